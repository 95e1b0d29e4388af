package check

import (
	"bytes"
	"fmt"
	"path"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// manifests holds the objects of deploy/kubernetes/derper.yaml.
type manifests struct {
	secrets  map[string]*corev1.Secret
	services map[string]*corev1.Service
	sets     []*appsv1.StatefulSet
}

// decodeManifests splits a multi-document YAML file and decodes each
// document strictly (unknown or duplicate fields are errors) into the
// Kubernetes API type its kind names.
func decodeManifests(t *testing.T, b []byte) manifests {
	t.Helper()
	ms := manifests{secrets: map[string]*corev1.Secret{}, services: map[string]*corev1.Service{}}
	docs := regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1)
	for i, doc := range docs {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("document %d: %v", i+1, err)
		}
		var err error
		switch head.APIVersion + " " + head.Kind {
		case "v1 Secret":
			o := new(corev1.Secret)
			err = yaml.UnmarshalStrict([]byte(doc), o)
			ms.secrets[o.Name] = o
		case "v1 Service":
			o := new(corev1.Service)
			err = yaml.UnmarshalStrict([]byte(doc), o)
			ms.services[o.Name] = o
		case "apps/v1 StatefulSet":
			o := new(appsv1.StatefulSet)
			err = yaml.UnmarshalStrict([]byte(doc), o)
			ms.sets = append(ms.sets, o)
		default:
			t.Fatalf("document %d: unexpected %s %s", i+1, head.APIVersion, head.Kind)
		}
		if err != nil {
			t.Fatalf("document %d (%s): %v", i+1, head.Kind, err)
		}
	}
	return ms
}

func stripComments(doc string) string {
	var b bytes.Buffer
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// TestKubernetesManifests checks the meshed region on Kubernetes: strict
// decoding into k8s.io/api types, a headless Service for the StatefulSet,
// one public Service per pod keeping client addresses, probes on /healthz,
// the mesh key mounted from the Secret, derper flags that exist, a
// -mesh-with naming every replica, and a non-root, read-only container.
func TestKubernetesManifests(t *testing.T) {
	ms := decodeManifests(t, readDeploy(t, "kubernetes/derper.yaml"))
	if len(ms.sets) != 1 {
		t.Fatalf("%d StatefulSets; want 1", len(ms.sets))
	}
	ss := ms.sets[0]
	replicas := int(*ss.Spec.Replicas)
	if replicas < 2 {
		t.Errorf("replicas %d; a meshed region needs at least 2", replicas)
	}
	if h := ms.services[ss.Spec.ServiceName]; h == nil || h.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("StatefulSet serviceName %q is not a headless Service in the file", ss.Spec.ServiceName)
	}
	for k, v := range ss.Spec.Selector.MatchLabels {
		if ss.Spec.Template.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod template", k, v)
		}
	}
	for i := 0; i < replicas; i++ {
		name := fmt.Sprintf("%s-%d", ss.Name, i)
		svc := ms.services[name]
		if svc == nil {
			t.Errorf("no public Service for pod %s", name)
			continue
		}
		if svc.Spec.Selector["statefulset.kubernetes.io/pod-name"] != name {
			t.Errorf("Service %s selects %v", name, svc.Spec.Selector)
		}
		if svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
			t.Errorf("Service %s: externalTrafficPolicy %q; STUN needs Local to see client addresses", name, svc.Spec.ExternalTrafficPolicy)
		}
		protos := map[string]corev1.Protocol{}
		for _, p := range svc.Spec.Ports {
			protos[p.Name] = p.Protocol
		}
		if protos["https"] != corev1.ProtocolTCP || protos["stun"] != corev1.ProtocolUDP {
			t.Errorf("Service %s ports %v; want https/TCP and stun/UDP", name, protos)
		}
	}

	pod := ss.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	if len(c.Command) != 1 || path.Base(c.Command[0]) != "derper" {
		t.Fatalf("container command %q", c.Command)
	}
	checkArgs(t, "container args", "derper", c.Args)
	ports := map[string]bool{}
	for _, p := range c.Ports {
		ports[p.Name] = true
	}
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe is not an HTTP GET", name)
			continue
		}
		if p.HTTPGet.Path != "/healthz" || !ports[p.HTTPGet.Port.String()] {
			t.Errorf("%s probe GET %s on port %q; want /healthz on a declared port", name, p.HTTPGet.Path, p.HTTPGet.Port.String())
		}
	}

	// The mesh key file is a key of a Secret mounted where the flag says.
	psk, _ := flagValue(c.Args, "mesh-psk-file")
	found := false
	for _, m := range c.VolumeMounts {
		if path.Dir(psk) != m.MountPath {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				sec := ms.secrets[v.Secret.SecretName]
				if sec == nil {
					t.Errorf("volume %s: Secret %q not in the file", v.Name, v.Secret.SecretName)
					continue
				}
				k, ok := sec.StringData[path.Base(psk)]
				found = ok
				if regexp.MustCompile(`^[0-9a-fA-F]{64,}$`).MatchString(strings.TrimSpace(k)) {
					t.Errorf("Secret %s holds a usable mesh key; ship a placeholder", sec.Name)
				}
			}
		}
	}
	if !found {
		t.Errorf("-mesh-psk-file %q is not a key of a mounted Secret", psk)
	}
	mesh, _ := flagValue(c.Args, "mesh-with")
	entries := strings.Split(mesh, ",")
	if len(entries) != replicas {
		t.Errorf("-mesh-with names %d hosts for %d replicas", len(entries), replicas)
	}
	for i, e := range entries {
		// A dial host must be the pod's name under the headless Service.
		if _, dial, ok := strings.Cut(e, "/"); ok {
			if want := fmt.Sprintf("%s-%d.%s", ss.Name, i, ss.Spec.ServiceName); dial != want {
				t.Errorf("-mesh-with entry %q dials %q; want %q", e, dial, want)
			}
		}
	}
	state, _ := flagValue(c.Args, "c")
	mounted := false
	for _, m := range c.VolumeMounts {
		mounted = mounted || strings.HasPrefix(state, m.MountPath+"/")
	}
	if !mounted {
		t.Errorf("key file %q is not on a volume", state)
	}

	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("container may escalate privileges or write its root filesystem")
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Error("pod does not require a non-root user")
	}
}
