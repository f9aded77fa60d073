package pluginimport

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// volumes converts a template's volumes (the plugin's PodVolume classes). As PodTemplateBuilder.build
// does, volume i is named volume-<i>, a second volume on a mount path already used is left out,
// and every volume is mounted in every container of the template (hostPath read-only when asked,
// a configMap at its subPath).
func (im *importer) volumes(file string, n *yaml.Node, t *outTemplate, subject string) {
	seen := map[string]bool{}
	i := 0
	for _, it := range items(n) {
		ps := pairs(it)
		if len(ps) != 1 {
			im.dropf(file, it.Line, subject, "volumes", "an entry that is not one volume kind; not carried over")
			continue
		}
		kind, body := canonicalKind(ps[0][0].Value, volumeAliases), ps[0][1]
		o := im.obj(file, body, subject+": "+kind)
		mountPath, _ := o.str("mountPath")
		if mountPath == "" {
			o.rest()
			im.dropf(file, it.Line, subject, "volumes "+kind, "no mountPath; not carried over")
			continue
		}
		mountPath = path.Clean(mountPath) // PodTemplateBuilder.normalizePath
		if seen[mountPath] {
			o.rest()
			im.dropf(file, it.Line, subject, "volumes "+kind, "a second volume on %s: the plugin keeps only the first, so does the import", mountPath)
			continue
		}
		name := fmt.Sprintf("volume-%d", i)
		vol := corev1.Volume{Name: name}
		mount := corev1.VolumeMount{Name: name, MountPath: mountPath}
		ok := true
		switch kind {
		case "emptyDirVolume": // EmptyDirVolume(mountPath, memory)
			vol.EmptyDir = &corev1.EmptyDirVolumeSource{}
			if im.flag(o, "memory") {
				vol.EmptyDir.Medium = corev1.StorageMediumMemory
			}
		case "hostPathVolume": // HostPathVolume(hostPath, mountPath, readOnly)
			p, _ := o.str("hostPath")
			vol.HostPath = &corev1.HostPathVolumeSource{Path: p}
			mount.ReadOnly = im.flag(o, "readOnly")
		case "configMapVolume": // ConfigMapVolume(mountPath, configMapName, optional), subPath
			cm, _ := o.str("configMapName")
			vol.ConfigMap = &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm}}
			if o.has("optional") {
				b := im.flag(o, "optional")
				vol.ConfigMap.Optional = &b
			}
			if sp, ok := o.str("subPath"); ok && sp != "" {
				mount.SubPath = path.Clean(sp)
			}
		case "secretVolume": // SecretVolume(mountPath, secretName, defaultMode, optional)
			s, _ := o.str("secretName")
			vol.Secret = &corev1.SecretVolumeSource{SecretName: s}
			if o.has("optional") {
				b := im.flag(o, "optional")
				vol.Secret.Optional = &b
			}
			vol.Secret.DefaultMode = im.mode(o, "defaultMode")
		case "nfsVolume": // NfsVolume(serverAddress, serverPath, readOnly, mountPath)
			addr, _ := o.str("serverAddress")
			p, _ := o.str("serverPath")
			vol.NFS = &corev1.NFSVolumeSource{Server: addr, Path: p, ReadOnly: im.flag(o, "readOnly")}
		case "persistentVolumeClaim": // PersistentVolumeClaim(mountPath, claimName, readOnly)
			c, _ := o.str("claimName")
			vol.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c, ReadOnly: im.flag(o, "readOnly")}
		case "genericEphemeralVolume", "dynamicPVC":
			// GenericEphemeralVolume is a generic ephemeral volume already. DynamicPVCVolume is a PVC
			// the plugin creates and owns by the pod: a generic ephemeral volume is the same life
			// cycle, done by Kubernetes itself.
			spec, good := im.claimSpec(o, subject, kind)
			if !good {
				ok = false
				break
			}
			vol.Ephemeral = &corev1.EphemeralVolumeSource{VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{Spec: spec}}
			if kind == "dynamicPVC" {
				im.changef(file, it.Line, subject, "volumes dynamicPVC", "a generic ephemeral volume: a PVC created with the pod and deleted with it, as the plugin's dynamic PVC")
			}
		default:
			ok = false
			im.dropf(file, it.Line, subject, "volumes "+kind, "unknown volume kind; not carried over (write it in the template's pod instead)")
			for k := range o.keys {
				o.used[k] = true
			}
		}
		o.rest()
		if !ok {
			continue
		}
		seen[mountPath] = true
		i++
		t.pod.Spec.Volumes = append(t.pod.Spec.Volumes, vol)
		t.templateMounts = append(t.templateMounts, mount)
		t.hasOwnVolumes = true
	}
}

func (im *importer) flag(o *obj, key string) bool {
	v, ok := o.str(key)
	if !ok || v == "" {
		return false
	}
	b, _ := im.boolean(o.file, o.line(key), o.what, key, v)
	return b
}

// mode reads SecretVolume's defaultMode as the plugin does, with Integer.parseInt: a decimal
// number. Kubernetes takes at most 0777 (511); a larger number written with octal digits only
// ("600") would be refused, and is plainly an octal mode, so it is read as one and reported.
func (im *importer) mode(o *obj, key string) *int32 {
	v, ok := o.str(key)
	v = strings.TrimSpace(v)
	if !ok || v == "" {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		im.dropf(o.file, o.line(key), o.what, key, "%q is not a decimal number (the plugin reads it with Integer.parseInt); not carried over", v)
		return nil
	}
	if n > 0o777 {
		oct, err := strconv.ParseInt(v, 8, 32)
		if err != nil || oct > 0o777 {
			im.dropf(o.file, o.line(key), o.what, key, "%s is more than 0777 (511), which Kubernetes refuses; not carried over", v)
			return nil
		}
		im.changef(o.file, o.line(key), o.what, key, "the plugin passes %s on as decimal, which Kubernetes refuses (more than 0777); read as the octal mode 0%s (%d)", v, strings.TrimLeft(v, "0"), oct)
		n = oct
	}
	m := int32(n)
	return &m
}

// claimSpec reads storageClassName, requestsSize and accessModes with the plugin's defaults
// (ProvisionedVolume: 10Gi, ReadWriteOnce).
func (im *importer) claimSpec(o *obj, subject, kind string) (corev1.PersistentVolumeClaimSpec, bool) {
	var spec corev1.PersistentVolumeClaimSpec
	size := "10Gi"
	if v, ok := o.str("requestsSize"); ok && v != "" {
		size = v
	}
	q, err := resource.ParseQuantity(strings.TrimSpace(size))
	if err != nil {
		im.dropf(o.file, o.line("requestsSize"), subject, kind+" requestsSize", "%q is not a Kubernetes quantity; the volume is not carried over", size)
		return spec, false
	}
	spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: q}
	mode := "ReadWriteOnce"
	if v, ok := o.str("accessModes"); ok && v != "" {
		mode = v
	}
	spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.PersistentVolumeAccessMode(mode)}
	if v, ok := o.str("storageClassName"); ok && v != "" {
		spec.StorageClassName = &v
	}
	return spec, true
}

// workspaceVolume converts the template's workspaceVolume (the plugin's WorkspaceVolume classes).
// emptyDir and the two PVC-per-pod kinds have a workspace: field of their own; the others become
// the pod's volume named workspace-volume, which the provisioner then uses as the workspace.
func (im *importer) workspaceVolume(o *obj, t *outTemplate, subject string) {
	n := o.get("workspaceVolume")
	if n == nil {
		return
	}
	ps := pairs(n)
	if len(ps) != 1 {
		im.dropf(o.file, o.line("workspaceVolume"), subject, "workspaceVolume", "expected one workspace volume kind; not carried over")
		return
	}
	kind, body := canonicalKind(ps[0][0].Value, workspaceAliases), ps[0][1]
	wo := im.obj(o.file, body, subject+": workspaceVolume "+kind)
	line := ps[0][0].Line
	vol := corev1.Volume{Name: "workspace-volume"}
	switch kind {
	case "emptyDirWorkspaceVolume": // EmptyDirWorkspaceVolume(memory), sizeLimit
		ed := map[string]any{}
		if im.flag(wo, "memory") {
			ed["medium"] = "Memory"
		}
		if v, ok := wo.str("sizeLimit"); ok && v != "" {
			if _, err := resource.ParseQuantity(v); err == nil {
				ed["sizeLimit"] = v
			} else {
				im.dropf(o.file, wo.line("sizeLimit"), subject, "workspaceVolume sizeLimit", "%q is not a Kubernetes quantity; not carried over", v)
			}
		}
		t.workspace = map[string]any{"emptyDir": ed}
	case "dynamicPVC", "genericEphemeralVolume":
		// DynamicPVCWorkspaceVolume / GenericEphemeralWorkspaceVolume: a claim per pod.
		spec, ok := im.claimSpec(wo, subject, "workspaceVolume "+kind)
		if ok {
			eph := map[string]any{"size": spec.Resources.Requests.Storage().String()}
			if spec.StorageClassName != nil {
				eph["storageClassName"] = *spec.StorageClassName
			}
			modes := []any{}
			for _, m := range spec.AccessModes {
				modes = append(modes, string(m))
			}
			eph["accessModes"] = modes
			t.workspace = map[string]any{"ephemeral": eph}
			if kind == "dynamicPVC" {
				im.changef(o.file, line, subject, "workspaceVolume dynamicPVC", "workspace ephemeral: a generic ephemeral volume, created with the pod and deleted with it like the plugin's dynamic PVC")
			}
		}
	case "hostPathWorkspaceVolume": // HostPathWorkspaceVolume(hostPath)
		p, _ := wo.str("hostPath")
		vol.HostPath = &corev1.HostPathVolumeSource{Path: p}
	case "nfsWorkspaceVolume": // NfsWorkspaceVolume(serverAddress, serverPath, readOnly)
		addr, _ := wo.str("serverAddress")
		p, _ := wo.str("serverPath")
		vol.NFS = &corev1.NFSVolumeSource{Server: addr, Path: p, ReadOnly: im.flag(wo, "readOnly")}
	case "persistentVolumeClaimWorkspaceVolume": // PersistentVolumeClaimWorkspaceVolume(claimName, readOnly)
		c, _ := wo.str("claimName")
		vol.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c, ReadOnly: im.flag(wo, "readOnly")}
		im.changef(o.file, line, subject, "workspaceVolume", "one claim shared by every agent of the template: with ReadWriteOnce only agents on one node can start; a per-pod workspace (ephemeral) is usually what one build per pod wants")
	default:
		im.dropf(o.file, line, subject, "workspaceVolume "+kind, "unknown workspace volume kind; the default emptyDir workspace is used")
		for k := range wo.keys {
			wo.used[k] = true
		}
	}
	wo.rest()
	if vol.HostPath != nil || vol.NFS != nil || vol.PersistentVolumeClaim != nil {
		t.pod.Spec.Volumes = append(t.pod.Spec.Volumes, vol)
	}
}

// JCasC names a describable by its symbol, its class name, or its class name without the base
// type's (DescribableAttribute.getPossibleNames): emptyDir, EmptyDirWorkspaceVolume and
// emptyDirWorkspaceVolume are one workspace volume.
var workspaceAliases = map[string]string{
	"emptydir": "emptyDirWorkspaceVolume", "emptydirworkspacevolume": "emptyDirWorkspaceVolume",
	"hostpath": "hostPathWorkspaceVolume", "hostpathworkspacevolume": "hostPathWorkspaceVolume",
	"nfs": "nfsWorkspaceVolume", "nfsworkspacevolume": "nfsWorkspaceVolume",
	"persistentvolumeclaim": "persistentVolumeClaimWorkspaceVolume", "persistentvolumeclaimworkspacevolume": "persistentVolumeClaimWorkspaceVolume",
	"dynamicpvc": "dynamicPVC", "dynamicpvcworkspacevolume": "dynamicPVC",
	"genericephemeral": "genericEphemeralVolume", "genericephemeralvolume": "genericEphemeralVolume", "genericephemeralworkspacevolume": "genericEphemeralVolume",
}

var volumeAliases = map[string]string{
	"emptydirvolume": "emptyDirVolume", "hostpathvolume": "hostPathVolume", "configmapvolume": "configMapVolume",
	"secretvolume": "secretVolume", "nfsvolume": "nfsVolume", "persistentvolumeclaim": "persistentVolumeClaim",
	"dynamicpvc": "dynamicPVC", "dynamicpvcvolume": "dynamicPVC", "genericephemeralvolume": "genericEphemeralVolume",
}

func canonicalKind(k string, aliases map[string]string) string {
	if c, ok := aliases[strings.ToLower(k)]; ok {
		return c
	}
	return k
}
