package check

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/openderp/openderp/derpmap"
)

// The subset of the Compose specification the file may use; strict
// decoding makes any other (or misspelt) key an error.
type composeFile struct {
	Name     string                    `json:"name"`
	XDerper  map[string]any            `json:"x-derper"`
	Services map[string]composeService `json:"services"`
	Secrets  map[string]struct {
		File string `json:"file"`
	} `json:"secrets"`
	Volumes map[string]*struct{} `json:"volumes"`
}

type composeService struct {
	Build *struct {
		Context    string `json:"context"`
		Dockerfile string `json:"dockerfile"`
	} `json:"build"`
	Image       string            `json:"image"`
	Restart     string            `json:"restart"`
	Hostname    string            `json:"hostname"`
	Entrypoint  []string          `json:"entrypoint"`
	Command     []string          `json:"command"`
	Environment map[string]string `json:"environment"`
	Secrets     []string          `json:"secrets"`
	Volumes     []string          `json:"volumes"`
	Ports       []string          `json:"ports"`
	DependsOn   []string          `json:"depends_on"`
	Healthcheck *struct {
		Disable bool `json:"disable"`
	} `json:"healthcheck"`
}

// TestCompose checks the docker-compose region: its structure, that the
// build points at the Dockerfile, that every flag exists, that the mesh
// lists every relay and the prober's DERP map names them, and — running
// make-secrets.sh in a copy — that every file it mounts is then present
// and each relay's certificate is valid for its name under the CA.
func TestCompose(t *testing.T) {
	var cf composeFile
	if err := yaml.UnmarshalStrict(readDeploy(t, "compose/docker-compose.yml"), &cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	dir := deployFile(t, "compose")
	var relays []string
	for name, s := range cf.Services {
		if len(s.Entrypoint) != 1 {
			t.Fatalf("service %s: entrypoint %q", name, s.Entrypoint)
		}
		bin := filepath.Base(s.Entrypoint[0])
		checkArgs(t, "service "+name, bin, s.Command)
		if s.Build != nil {
			if _, err := os.Stat(filepath.Join(dir, s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("service %s: build: %v", name, err)
			}
		}
		if s.Image != "openderp:latest" {
			t.Errorf("service %s: image %q; want the image the file builds", name, s.Image)
		}
		for _, sec := range s.Secrets {
			if _, ok := cf.Secrets[sec]; !ok {
				t.Errorf("service %s: undeclared secret %q", name, sec)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if !strings.HasPrefix(src, ".") {
				if _, ok := cf.Volumes[src]; !ok {
					t.Errorf("service %s: undeclared volume %q", name, src)
				}
			}
		}
		for _, dep := range s.DependsOn {
			if _, ok := cf.Services[dep]; !ok {
				t.Errorf("service %s: depends on unknown %q", name, dep)
			}
		}
		if bin == "derper" {
			relays = append(relays, s.Hostname)
			mesh, _ := flagValue(s.Command, "mesh-with")
			host, _ := flagValue(s.Command, "hostname")
			if host != s.Hostname {
				t.Errorf("service %s: -hostname %q but hostname %q", name, host, s.Hostname)
			}
			if psk, _ := flagValue(s.Command, "mesh-psk-file"); psk != "/run/secrets/mesh_key" {
				t.Errorf("service %s: -mesh-psk-file %q; want the compose secret", name, psk)
			}
			for _, other := range []string{"derp-a", "derp-b"} {
				if !strings.Contains(","+mesh+",", ","+other+",") {
					t.Errorf("service %s: -mesh-with %q lacks %s", name, mesh, other)
				}
			}
		}
	}
	if len(relays) != 2 {
		t.Errorf("relays %q; want two", relays)
	}

	// The prober's map names exactly the relays.
	f, err := os.Open(filepath.Join(dir, "derpmap.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := derpmap.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, r := range m.Regions {
		for _, n := range r.Nodes {
			hosts = append(hosts, n.HostName)
		}
	}
	if strings.Join(sorted(hosts), ",") != strings.Join(sorted(relays), ",") {
		t.Errorf("derpmap.json names %q; compose runs %q", hosts, relays)
	}

	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed; make-secrets.sh not run")
	}
	work := t.TempDir()
	for _, name := range []string{"make-secrets.sh", "docker-compose.yml", "derpmap.json"} {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		os.WriteFile(filepath.Join(work, name), b, 0o755)
	}
	if out, err := command(t, time.Minute, "bash", filepath.Join(work, "make-secrets.sh")).CombinedOutput(); err != nil {
		t.Fatalf("make-secrets.sh: %v\n%s", err, out)
	}
	for name, s := range cf.Secrets {
		if _, err := os.Stat(filepath.Join(work, s.File)); err != nil {
			t.Errorf("secret %s: %v", name, err)
		}
	}
	for name, s := range cf.Services {
		for _, v := range s.Volumes {
			if src, _, _ := strings.Cut(v, ":"); strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join(work, src)); err != nil {
					t.Errorf("service %s: mount source: %v", name, err)
				}
			}
		}
	}
	key, _ := os.ReadFile(filepath.Join(work, "mesh.key"))
	if k := strings.TrimSpace(string(key)); len(k) < 64 || strings.Trim(k, "0123456789abcdef") != "" {
		t.Errorf("mesh.key %q is not 64+ hex digits", k)
	}
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(filepath.Join(work, "certs", "ca.crt"))
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("certs/ca.crt holds no certificate")
	}
	for _, host := range relays {
		b, _ := os.ReadFile(filepath.Join(work, "certs", host+".crt"))
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Errorf("certs/%s.crt: no PEM", host)
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err == nil {
			_, err = c.Verify(x509.VerifyOptions{DNSName: host, Roots: pool})
		}
		if err != nil {
			t.Errorf("certs/%s.crt: %v", host, err)
		}
		if _, err := os.Stat(filepath.Join(work, "certs", host+".key")); err != nil {
			t.Error(err)
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
