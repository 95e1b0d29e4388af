package check

import (
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// TestDockerfile parses the Dockerfile with BuildKit's own parser and
// checks its shape: a build stage and a separate final stage that runs as
// a non-root user, copies only the binaries, has a health check, and
// starts derper with flags it knows. No Docker engine runs here, so the
// image itself is not built; instead the build stage's go build command is
// run on the checkout, which proves the module builds alone and
// statically.
func TestDockerfile(t *testing.T) {
	res, err := parser.Parse(bytes.NewReader(readDeploy(t, "docker/Dockerfile")))
	if err != nil {
		t.Fatalf("parsing Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile warning: %s", w.Short)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("Dockerfile instructions: %v", err)
	}
	if len(stages) != 2 {
		t.Fatalf("%d stages; want a build stage and a final stage", len(stages))
	}
	build, final := stages[0], stages[1]
	if build.Name != "build" || !strings.HasPrefix(build.BaseName, "golang:") {
		t.Errorf("first stage %q FROM %q; want build FROM golang", build.Name, build.BaseName)
	}
	if strings.Contains(final.BaseName, "golang") {
		t.Errorf("final stage FROM %q carries the toolchain", final.BaseName)
	}
	goVersion := ""
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if kv.Key == "GO_VERSION" && kv.Value != nil {
				goVersion = *kv.Value
			}
		}
	}
	checkGoVersion(t, goVersion)

	// Build stage: COPY sources exist in the context (the repository
	// root), and one RUN builds statically.
	root := repoRoot(t)
	var buildCmd, version string
	for _, c := range build.Commands {
		switch c := c.(type) {
		case *instructions.CopyCommand:
			for _, src := range c.SourcePaths {
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("COPY %s: not in the build context: %v", src, err)
				}
			}
		case *instructions.ArgCommand:
			for _, kv := range c.Args {
				if kv.Key == "VERSION" && kv.Value != nil {
					version = *kv.Value
				}
			}
		case *instructions.RunCommand:
			if cmd := strings.Join(c.CmdLine, " "); strings.Contains(cmd, "go build") {
				buildCmd = cmd
			}
		}
	}
	if !strings.Contains(buildCmd, "CGO_ENABLED=0") {
		t.Fatalf("build command %q does not disable cgo", buildCmd)
	}

	// Final stage.
	var user, entry []string
	var health *instructions.HealthCheckCommand
	copiedFromBuild := false
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = append(user, c.User)
		case *instructions.EntrypointCommand:
			entry = c.CmdLine
		case *instructions.CmdCommand:
			entry = append(entry, c.CmdLine...)
		case *instructions.HealthCheckCommand:
			health = c
		case *instructions.CopyCommand:
			copiedFromBuild = copiedFromBuild || c.From == "build"
		}
	}
	if len(user) == 0 || slices.ContainsFunc(user, func(u string) bool {
		name, _, _ := strings.Cut(u, ":")
		return name == "root" || name == "0"
	}) {
		t.Errorf("final stage USER %q; want a non-root user", user)
	}
	if health == nil || len(health.Health.Test) < 2 || health.Health.Test[0] != "CMD" {
		t.Errorf("final stage has no exec-form HEALTHCHECK")
	} else {
		bin := filepath.Base(health.Health.Test[1])
		if bin != "stunc" && bin != "derper" && bin != "derpprobe" {
			t.Errorf("HEALTHCHECK runs %s, which the image does not have", bin)
		}
	}
	if !copiedFromBuild {
		t.Error("final stage copies nothing from the build stage")
	}
	if len(entry) == 0 || entry[0] != "/usr/local/bin/derper" {
		t.Fatalf("ENTRYPOINT %q; want derper", entry)
	}
	checkArgs(t, "Dockerfile ENTRYPOINT/CMD", "derper", entry[1:])

	// Run the build stage's command on the checkout.
	out := t.TempDir()
	cmd := strings.ReplaceAll(buildCmd, "/out/bin/", out+"/")
	cmd = strings.ReplaceAll(cmd, "${VERSION}", version)
	sh := command(t, 10*time.Minute, "sh", "-c", cmd)
	sh.Dir = root
	if b, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("Dockerfile build command: %v\n%s\n%s", err, cmd, b)
	}
	for _, bin := range []string{"derper", "derpprobe", "stunc"} {
		f, err := elf.Open(filepath.Join(out, bin))
		if err != nil {
			t.Errorf("%s: %v", bin, err)
			continue
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked", bin)
			}
		}
		f.Close()
	}
	v, err := command(t, time.Minute, filepath.Join(out, "derper"), "-version").Output()
	if err != nil || strings.TrimSpace(string(v)) != version {
		t.Errorf("derper -version = %q, %v; want the build's VERSION %q", v, err, version)
	}
}

// checkGoVersion requires the image's Go to be at least the go directive
// of go.mod, so the image can build the module.
func checkGoVersion(t *testing.T, image string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	minor := func(v string) (int, int) {
		f := strings.Split(strings.TrimSpace(v), ".")
		if len(f) < 2 {
			return -1, -1
		}
		a, err1 := strconv.Atoi(f[0])
		b, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			return -1, -1
		}
		return a, b
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "go "); ok {
			ma, mb := minor(v)
			ia, ib := minor(image)
			if ia < 0 || ma < 0 || ia != ma || ib < mb {
				t.Errorf("Dockerfile GO_VERSION %q does not cover go.mod's go %s", image, strings.TrimSpace(v))
			}
			return
		}
	}
	t.Error("go.mod has no go directive")
}
