package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/mailfront/mailfront/proxy"
)

// manifests is one file of deploy/kubernetes, decoded.
type manifests struct {
	file         string
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	pvcs         map[string]*corev1.PersistentVolumeClaim
	certificates []*cmv1.Certificate
	deployments  []*appsv1.Deployment
	services     []*corev1.Service
	pdbs         []*policyv1.PodDisruptionBudget
}

// decodeManifests decodes every document of a file strictly, as the API
// server does with strict field validation: an unknown field, a field in
// the wrong case or a duplicate key is an error, and so is a kind this
// test does not know.
func decodeManifests(t *testing.T, file string) *manifests {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m := &manifests{
		file:       filepath.ToSlash(file),
		configMaps: map[string]*corev1.ConfigMap{},
		secrets:    map[string]*corev1.Secret{},
		pvcs:       map[string]*corev1.PersistentVolumeClaim{},
	}
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", file, i, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		if err := m.decode(doc); err != nil {
			t.Errorf("%s: document %d: %v", file, i, err)
		}
	}
	return m
}

func (m *manifests) decode(doc []byte) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	var tm struct{ APIVersion, Kind string }
	if err := json.Unmarshal(js, &tm); err != nil {
		return err
	}
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 ConfigMap":
		o := &corev1.ConfigMap{}
		obj, m.configMaps[name(js)] = o, o
	case "v1 Secret":
		o := &corev1.Secret{}
		obj, m.secrets[name(js)] = o, o
	case "v1 PersistentVolumeClaim":
		o := &corev1.PersistentVolumeClaim{}
		obj, m.pvcs[name(js)] = o, o
	case "v1 Service":
		o := &corev1.Service{}
		obj, m.services = o, append(m.services, o)
	case "apps/v1 Deployment":
		o := &appsv1.Deployment{}
		obj, m.deployments = o, append(m.deployments, o)
	case "policy/v1 PodDisruptionBudget":
		o := &policyv1.PodDisruptionBudget{}
		obj, m.pdbs = o, append(m.pdbs, o)
	case "cert-manager.io/v1 Certificate":
		o := &cmv1.Certificate{}
		obj, m.certificates = o, append(m.certificates, o)
	default:
		return fmt.Errorf("apiVersion %q kind %q: not a kind this test knows; add it to decode", tm.APIVersion, tm.Kind)
	}
	strict, err := kjson.UnmarshalStrict(js, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if len(strict) > 0 {
		return fmt.Errorf("%s %s: %w", tm.Kind, name(js), errors.Join(strict...))
	}
	return nil
}

// name is an object's metadata.name, read before its kind is decoded.
func name(js []byte) string {
	var o struct {
		Metadata struct{ Name string }
	}
	json.Unmarshal(js, &o)
	return o.Metadata.Name
}

// TestKubernetesManifests decodes every file in deploy/kubernetes and
// checks each one as a whole: the pod passes Pod Security "restricted"
// field by field, as the image's user; the probes ask the admin endpoint
// over HTTP at the address the configuration gives it; every container
// port is above 1024 and named after its listener, and the Service
// publishes each listener on its standard port; the configuration passes
// config.Parse; the certificates come from a Secret cert-manager fills or
// from ACME storage on a volume every replica shares; a
// PodDisruptionBudget lets a node drain one pod at a time.
func TestKubernetesManifests(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes (%v)", err)
	}
	var acme, certManager bool
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			m := decodeManifests(t, f)
			if t.Failed() {
				return
			}
			c := checkManifests(t, m)
			acme = acme || c.TLS.ACME != nil
			certManager = certManager || len(m.certificates) > 0
		})
	}
	if !acme || !certManager {
		t.Errorf("deploy/kubernetes shows ACME storage: %v, cert-manager: %v; want both", acme, certManager)
	}
}

// only returns the single element of a kind in a file.
func only[T any](t *testing.T, file, kind string, list []T) T {
	t.Helper()
	if len(list) != 1 {
		t.Fatalf("%s: %d %ss, want exactly one", file, len(list), kind)
	}
	return list[0]
}

// checkManifests runs every check on one file and returns its mailfront
// configuration.
func checkManifests(t *testing.T, m *manifests) parsedConfig {
	t.Helper()
	dep := only(t, m.file, "Deployment", m.deployments)
	pod := &dep.Spec.Template
	var c *corev1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == "mailfront" {
			c = &pod.Spec.Containers[i]
		}
	}
	if c == nil {
		t.Fatalf("%s: the Deployment has no container named mailfront", m.file)
	}
	cfg := podConfig(t, m, pod, c)
	checkListeners(t, m.file, cfg)
	checkWarnings(t, m.file, cfg)
	checkSecurity(t, m.file, pod, c)
	checkProbes(t, m.file, c, cfg)
	checkPorts(t, m.file, c, cfg)
	checkService(t, m, pod, c, cfg)
	checkCertificates(t, m, pod, c, cfg)
	checkAvailability(t, m, dep, c, cfg)
	return cfg
}

// podConfig finds the configuration file the container runs with (the
// image's command, or the args that replace it), reads it from the
// ConfigMap or Secret mounted there, and parses it.
func podConfig(t *testing.T, m *manifests, pod *corev1.PodTemplateSpec, c *corev1.Container) parsedConfig {
	t.Helper()
	if len(c.Command) > 0 {
		t.Errorf("%s: command %q replaces the image's entry point %s", m.file, c.Command, imageBinary)
	}
	args := c.Args
	if len(args) == 0 {
		args = []string{"run", "--config", imageConfig}
	}
	i := slices.Index(args, "--config")
	if args[0] != "run" || i < 0 || i+1 >= len(args) {
		t.Fatalf("%s: args %q: want run --config FILE", m.file, args)
	}
	file := args[i+1]
	vm, key := mountOf(c, file)
	if vm == nil {
		t.Fatalf("%s: nothing is mounted at %s, the configuration file", m.file, file)
	}
	v := volume(t, m.file, pod, vm.Name)
	var text string
	var ok bool
	switch {
	case v.ConfigMap != nil && m.configMaps[v.ConfigMap.Name] != nil:
		text, ok = m.configMaps[v.ConfigMap.Name].Data[key]
	case v.Secret != nil && m.secrets[v.Secret.SecretName] != nil:
		s := m.secrets[v.Secret.SecretName]
		text, ok = s.StringData[key]
		if !ok {
			b, found := s.Data[key]
			text, ok = string(b), found
		}
		checkGroupReadable(t, m.file, pod, vm.Name, v.Secret.DefaultMode)
	default:
		t.Fatalf("%s: volume %s holds the configuration, but is no ConfigMap or Secret in this file", m.file, vm.Name)
	}
	if !ok {
		t.Fatalf("%s: the configuration's volume %s has no key %s", m.file, vm.Name, key)
	}
	return parseConfig(t, m.file, text)
}

// mountOf returns the volume mount that holds file and the key of the
// file in its volume (the subPath, or the path below the mount).
func mountOf(c *corev1.Container, file string) (*corev1.VolumeMount, string) {
	for i := range c.VolumeMounts {
		vm := &c.VolumeMounts[i]
		if vm.SubPath != "" && vm.MountPath == file {
			return vm, vm.SubPath
		}
		if rel, ok := strings.CutPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/"); ok && vm.SubPath == "" {
			return vm, rel
		}
	}
	return nil, ""
}

func volume(t *testing.T, file string, pod *corev1.PodTemplateSpec, name string) *corev1.Volume {
	t.Helper()
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == name {
			return &pod.Spec.Volumes[i]
		}
	}
	t.Fatalf("%s: no volume named %s", file, name)
	return nil
}

// checkGroupReadable checks that a Secret volume's files can be read by
// the image's user: they belong to root and to the pod's fsGroup, so the
// mode must let the group read.
func checkGroupReadable(t *testing.T, file string, pod *corev1.PodTemplateSpec, vol string, mode *int32) {
	t.Helper()
	sc := pod.Spec.SecurityContext
	if sc == nil || sc.FSGroup == nil || *sc.FSGroup != imageGID {
		t.Errorf("%s: volume %s is a Secret, but the pod's fsGroup is not %d: uid %d could not read it", file, vol, imageGID, imageUID)
	}
	if mode != nil && *mode&0o040 == 0 {
		t.Errorf("%s: volume %s: defaultMode %#o does not let the group (fsGroup %d) read it", file, vol, *mode, imageGID)
	}
}

// checkSecurity checks the pod against Pod Security "restricted", the
// latest version, with Kubernetes' own evaluator, and field by field.
func checkSecurity(t *testing.T, file string, pod *corev1.PodTemplateSpec, c *corev1.Container) {
	t.Helper()
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	lv := psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}
	for _, r := range ev.EvaluatePod(lv, &pod.ObjectMeta, &pod.Spec) {
		if !r.Allowed {
			t.Errorf("%s: Pod Security restricted (%s): %s: %s", file, lv.Version, r.ForbiddenReason, r.ForbiddenDetail)
		}
	}

	ps := pod.Spec.SecurityContext
	if ps == nil {
		t.Fatalf("%s: no pod securityContext", file)
	}
	if ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot {
		t.Errorf("%s: pod securityContext.runAsNonRoot is not true", file)
	}
	if ps.RunAsUser == nil || *ps.RunAsUser != imageUID || ps.RunAsGroup == nil || *ps.RunAsGroup != imageGID {
		t.Errorf("%s: pod runs as user %v group %v, want the image's %d:%d", file, deref(ps.RunAsUser), deref(ps.RunAsGroup), imageUID, imageGID)
	}
	if ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod securityContext.seccompProfile is not RuntimeDefault", file)
	}
	if pod.Spec.HostNetwork || pod.Spec.HostPID || pod.Spec.HostIPC {
		t.Errorf("%s: the pod shares the node's network, PID or IPC namespace", file)
	}
	sc := c.SecurityContext
	if sc == nil {
		t.Fatalf("%s: no container securityContext", file)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation is not false", file)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: the container is privileged", file)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem is not true", file)
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		t.Errorf("%s: capabilities %+v, want drop [ALL] and none added (a non-root process gets no effective capability from add)", file, sc.Capabilities)
	}
	for _, v := range pod.Spec.Volumes {
		if v.HostPath != nil {
			t.Errorf("%s: volume %s is a hostPath", file, v.Name)
		}
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// checkProbes checks liveness asks /healthz and readiness /readyz, over
// HTTP, on the admin endpoint's port; never a TCP dial to a mail port,
// which mailfront would log as a failed handshake.
func checkProbes(t *testing.T, file string, c *corev1.Container, cfg parsedConfig) {
	t.Helper()
	_, admin := splitPort(t, file, cfg.Admin.Address)
	for _, p := range []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
		{"startupProbe", c.StartupProbe, "/healthz"},
	} {
		if p.probe == nil {
			if p.kind != "startupProbe" {
				t.Errorf("%s: no %s", file, p.kind)
			}
			continue
		}
		h := p.probe.ProbeHandler
		if h.HTTPGet == nil || h.TCPSocket != nil || h.Exec != nil || h.GRPC != nil {
			t.Errorf("%s: %s: want an httpGet and nothing else", file, p.kind)
			continue
		}
		if h.HTTPGet.Path != p.path {
			t.Errorf("%s: %s asks %s, want %s", file, p.kind, h.HTTPGet.Path, p.path)
		}
		if s := h.HTTPGet.Scheme; s != "" && s != corev1.URISchemeHTTP {
			t.Errorf("%s: %s scheme %s: the admin endpoint speaks plain HTTP", file, p.kind, s)
		}
		if got := containerPort(c, h.HTTPGet.Port); got != admin {
			t.Errorf("%s: %s on port %s (%d), want the admin endpoint's %d", file, p.kind, h.HTTPGet.Port.String(), got, admin)
		}
	}
}

// containerPort resolves a port by number or by name; 0 if it names none.
func containerPort(c *corev1.Container, p intstr.IntOrString) int {
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	return 0
}

// checkPorts checks every container port is above 1024, not bound on the
// node, named after the listener (or the admin endpoint) on it, and that
// every listener has its port.
func checkPorts(t *testing.T, file string, c *corev1.Container, cfg parsedConfig) {
	t.Helper()
	want := map[string]int{}
	for _, l := range cfg.Listeners {
		_, want[l.Name] = splitPort(t, file, l.Address)
	}
	_, want["admin"] = splitPort(t, file, cfg.Admin.Address)
	got := map[string]int{}
	for _, p := range c.Ports {
		if p.ContainerPort < unprivilegedPortStart {
			t.Errorf("%s: container port %s %d: uid %d cannot bind below %d", file, p.Name, p.ContainerPort, imageUID, unprivilegedPortStart)
		}
		if p.HostPort != 0 {
			t.Errorf("%s: container port %s binds host port %d", file, p.Name, p.HostPort)
		}
		if _, dup := got[p.Name]; dup {
			t.Errorf("%s: two container ports named %s", file, p.Name)
		}
		got[p.Name] = int(p.ContainerPort)
	}
	for n, p := range want {
		if got[n] != p {
			t.Errorf("%s: container port %s is %d, want %d (the configuration's)", file, n, got[n], p)
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			t.Errorf("%s: container port %s is no listener's and not the admin endpoint", file, n)
		}
	}
}

// checkService checks the Service selects the pods, keeps the clients'
// addresses, publishes each listener on its protocol's standard port and
// nothing else (not the admin endpoint).
func checkService(t *testing.T, m *manifests, pod *corev1.PodTemplateSpec, c *corev1.Container, cfg parsedConfig) {
	t.Helper()
	svc := only(t, m.file, "Service", m.services)
	if !selects(svc.Spec.Selector, pod.Labels) {
		t.Errorf("%s: Service selector %v does not select the pods %v", m.file, svc.Spec.Selector, pod.Labels)
	}
	proxied := true
	for _, l := range cfg.Listeners {
		proxied = proxied && l.ProxyProtocol != nil && len(l.ProxyProtocol.Trusted) > 0
	}
	if svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal && !proxied {
		t.Errorf("%s: externalTrafficPolicy %q hides the clients' addresses: want Local, or PROXY headers on every listener", m.file, svc.Spec.ExternalTrafficPolicy)
	}
	byPort := map[int]string{}
	for _, l := range cfg.Listeners {
		_, p := splitPort(t, m.file, l.Address)
		byPort[p] = l.Name
	}
	published := map[string]int{}
	for _, sp := range svc.Spec.Ports {
		target := containerPort(c, sp.TargetPort)
		if sp.TargetPort.Type == intstr.Int && sp.TargetPort.IntVal == 0 {
			target = int(sp.Port)
		}
		l, ok := byPort[target]
		if !ok {
			t.Errorf("%s: Service port %s (%d) targets %s, which is no listener", m.file, sp.Name, sp.Port, sp.TargetPort.String())
			continue
		}
		if sp.Name != l {
			t.Errorf("%s: Service port %s targets listener %s: name them alike", m.file, sp.Name, l)
		}
		published[l] = int(sp.Port)
	}
	for _, l := range cfg.Listeners {
		want := publicPort[[2]string{l.Protocol, l.TLS}]
		if published[l.Name] != want {
			t.Errorf("%s: listener %s (%s %s) is published on %d, want %d", m.file, l.Name, l.Protocol, l.TLS, published[l.Name], want)
		}
	}
}

// selects reports whether a selector matches labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkCertificates checks where the certificates come from. ACME: its
// storage (the image's volume by default) is a claim every replica can
// share, and the challenge needs no inbound connection to a pod that is
// not ready yet. Files: they are on a Secret volume that a cert-manager
// Certificate in the same file fills, mounted whole (a subPath mount never
// sees a renewal), readable by the image's group.
func checkCertificates(t *testing.T, m *manifests, pod *corev1.PodTemplateSpec, c *corev1.Container, cfg parsedConfig) {
	t.Helper()
	if a := cfg.TLS.ACME; a != nil {
		storage := a.Storage
		if storage == "" {
			storage = imageStorage
		}
		vm, _ := mountOf(c, storage+"/certificates")
		if vm == nil || vm.MountPath != storage || vm.ReadOnly {
			t.Fatalf("%s: the ACME storage %s is not a writable volume mount of its own", m.file, storage)
		}
		v := volume(t, m.file, pod, vm.Name)
		if v.PersistentVolumeClaim == nil || m.pvcs[v.PersistentVolumeClaim.ClaimName] == nil {
			t.Fatalf("%s: the ACME storage is not a PersistentVolumeClaim of this file", m.file)
		}
		pvc := m.pvcs[v.PersistentVolumeClaim.ClaimName]
		if replicas := m.deployments[0].Spec.Replicas; (replicas == nil || *replicas > 1) && !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany) {
			t.Errorf("%s: %d replicas share the ACME storage, but its claim is %v, not ReadWriteMany", m.file, deref(replicas), pvc.Spec.AccessModes)
		}
		checkGroupWritable(t, m.file, pod)
		// A pod is ready, and in the Service's endpoints, only once it
		// has its certificates: a CA's http-01 or tls-alpn-01 check
		// through the Service could never reach the first pod.
		if (a.Challenges.HTTP != nil || a.Challenges.TLSALPN != nil) && !m.services[0].Spec.PublishNotReadyAddresses {
			t.Errorf("%s: ACME with http-01 or tls-alpn-01 behind a Service that routes to ready pods only: the first certificate can never be obtained; use dns-01", m.file)
		}
	}
	for i, cf := range cfg.TLS.Certificates {
		for _, f := range []string{cf.CertFile, cf.KeyFile} {
			vm, key := mountOf(c, f)
			if vm == nil || vm.SubPath != "" {
				t.Errorf("%s: tls.certificates[%d]: %s is not in a volume mounted whole", m.file, i, f)
				continue
			}
			v := volume(t, m.file, pod, vm.Name)
			if v.Secret == nil {
				t.Errorf("%s: tls.certificates[%d]: %s is not from a Secret", m.file, i, f)
				continue
			}
			if !slices.ContainsFunc(m.certificates, func(c *cmv1.Certificate) bool { return c.Spec.SecretName == v.Secret.SecretName }) {
				t.Errorf("%s: Secret %s is filled by no Certificate in this file", m.file, v.Secret.SecretName)
			}
			if key != "tls.crt" && key != "tls.key" {
				t.Errorf("%s: tls.certificates[%d]: %s: cert-manager's Secret holds tls.crt and tls.key", m.file, i, f)
			}
			checkGroupReadable(t, m.file, pod, vm.Name, v.Secret.DefaultMode)
		}
	}
}

// checkGroupWritable checks a volume the image's user writes to is given
// to its group (fsGroup), whatever its owner on the storage.
func checkGroupWritable(t *testing.T, file string, pod *corev1.PodTemplateSpec) {
	t.Helper()
	if sc := pod.Spec.SecurityContext; sc == nil || sc.FSGroup == nil || *sc.FSGroup != imageGID {
		t.Errorf("%s: the pod's fsGroup is not %d: uid %d may not be able to write its ACME storage", file, imageGID, imageUID)
	}
}

// checkAvailability checks a node drain can evict one pod at a time and
// no more, that resources are requested and memory bounded, and that a
// pod gets the time to say goodbye to its sessions.
func checkAvailability(t *testing.T, m *manifests, dep *appsv1.Deployment, c *corev1.Container, cfg parsedConfig) {
	t.Helper()
	replicas := int32(1)
	if dep.Spec.Replicas != nil {
		replicas = *dep.Spec.Replicas
	}
	pdb := only(t, m.file, "PodDisruptionBudget", m.pdbs)
	if pdb.Spec.Selector == nil || !selects(pdb.Spec.Selector.MatchLabels, dep.Spec.Template.Labels) {
		t.Errorf("%s: the PodDisruptionBudget does not select the Deployment's pods", m.file)
	}
	switch {
	case replicas < 2:
		t.Errorf("%s: %d replica: a disruption budget cannot keep a single pod up during a drain", m.file, replicas)
	case pdb.Spec.MaxUnavailable != nil:
		if n := pdb.Spec.MaxUnavailable.IntValue(); pdb.Spec.MaxUnavailable.Type != intstr.Int || n < 1 || int32(n) >= replicas {
			t.Errorf("%s: maxUnavailable %s, want at least 1 and fewer than the %d replicas", m.file, pdb.Spec.MaxUnavailable.String(), replicas)
		}
	case pdb.Spec.MinAvailable != nil:
		if n := pdb.Spec.MinAvailable.IntValue(); pdb.Spec.MinAvailable.Type != intstr.Int || n < 1 || int32(n) >= replicas {
			t.Errorf("%s: minAvailable %s, want at least 1 and fewer than the %d replicas", m.file, pdb.Spec.MinAvailable.String(), replicas)
		}
	default:
		t.Errorf("%s: the PodDisruptionBudget sets neither maxUnavailable nor minAvailable", m.file)
	}

	req, lim := c.Resources.Requests, c.Resources.Limits
	if req.Cpu().IsZero() || req.Memory().IsZero() {
		t.Errorf("%s: resources.requests %v: want cpu and memory", m.file, req)
	}
	if lim.Memory().IsZero() || lim.Memory().Cmp(*req.Memory()) < 0 {
		t.Errorf("%s: resources.limits.memory %v: want one, at least the request", m.file, lim.Memory())
	}

	drain := cfg.Shutdown.Drain
	if drain == 0 {
		drain = proxy.DefaultDrain
	}
	var preStop time.Duration
	if l := c.Lifecycle; l != nil && l.PreStop != nil {
		if l.PreStop.Sleep == nil {
			t.Errorf("%s: preStop is not a sleep (the image has no shell)", m.file)
		} else {
			preStop = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
		}
	}
	grace := 30 * time.Second
	if g := dep.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if grace <= preStop+drain {
		t.Errorf("%s: terminationGracePeriodSeconds %v is not more than preStop %v and shutdown.drain %v: sessions would be killed, not told", m.file, grace, preStop, drain)
	}
}
