package kubelet

import (
	"bufio"
	"context"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// leaseNamespace holds the node heartbeat Leases.
const leaseNamespace = "kube-node-lease"

func (k *Kubelet) nodeLabels() map[string]string {
	return map[string]string{
		"kubernetes.io/hostname":  k.cfg.NodeName,
		"kubernetes.io/os":        "linux",
		"kubernetes.io/arch":      goruntime.GOARCH,
		"beta.kubernetes.io/os":   "linux",
		"beta.kubernetes.io/arch": goruntime.GOARCH,
	}
}

// machineCapacity reports this machine's CPUs and memory and kubelet's default 110 pods.
func machineCapacity() corev1.ResourceList {
	list := corev1.ResourceList{
		corev1.ResourceCPU:  *resource.NewQuantity(int64(goruntime.NumCPU()), resource.DecimalSI),
		corev1.ResourcePods: *resource.NewQuantity(110, resource.DecimalSI),
	}
	if mem := memTotal(); mem > 0 {
		list[corev1.ResourceMemory] = *resource.NewQuantity(mem, resource.BinarySI)
	}
	return list
}

func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func (k *Kubelet) nodeStatus(now metav1.Time, prev []corev1.NodeCondition) corev1.NodeStatus {
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg,
			LastHeartbeatTime: now, LastTransitionTime: now}
		for _, p := range prev {
			if p.Type == t && p.Status == s {
				c.LastTransitionTime = p.LastTransitionTime
			}
		}
		return c
	}
	return corev1.NodeStatus{
		Capacity:    k.cfg.Capacity.DeepCopy(),
		Allocatable: k.cfg.Capacity.DeepCopy(),
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: k.cfg.NodeIP.String()},
			{Type: corev1.NodeHostName, Address: k.cfg.NodeName},
		},
		DaemonEndpoints: k.daemonEndpoints(),
		NodeInfo: corev1.NodeSystemInfo{
			KubeletVersion:          k.cfg.KubeletVersion,
			OperatingSystem:         "linux",
			Architecture:            goruntime.GOARCH,
			ContainerRuntimeVersion: "weft://1.0.0",
			OSImage:                 "weft local node",
			KernelVersion:           kernelVersion(),
			MachineID:               k.cfg.NodeName,
			SystemUUID:              k.cfg.NodeName,
			BootID:                  bootID(),
		},
	}
}

func kernelVersion() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

// registerNode creates the Node (or takes over an existing one), retrying until ctx ends.
func (k *Kubelet) registerNode(ctx context.Context) error {
	for {
		err := k.tryRegisterNode(ctx)
		if err == nil {
			k.log.Info("node registered", "node", k.cfg.NodeName)
			return nil
		}
		k.log.Warn("register node", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("register node %s: %w", k.cfg.NodeName, err)
		case <-time.After(time.Second):
		}
	}
}

func (k *Kubelet) tryRegisterNode(ctx context.Context) error {
	nodes := k.client.CoreV1().Nodes()
	now := metav1.Now()
	node, err := nodes.Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		node = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: k.cfg.NodeName, Labels: k.nodeLabels()}}
		if k.cfg.PodCIDR.IsValid() {
			node.Spec.PodCIDR = k.cfg.PodCIDR.String()
			node.Spec.PodCIDRs = []string{k.cfg.PodCIDR.String()}
		}
		node, err = nodes.Create(ctx, node, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create node: %w", err)
		}
	case err != nil:
		return fmt.Errorf("get node: %w", err)
	default:
		if node.Labels == nil {
			node.Labels = map[string]string{}
		}
		for key, v := range k.nodeLabels() {
			node.Labels[key] = v
		}
		node.Spec.Taints = nil
		node.Spec.Unschedulable = false
		if node, err = nodes.Update(ctx, node, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update node: %w", err)
		}
	}
	node.Status = k.nodeStatus(now, node.Status.Conditions)
	if _, err := nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update node status: %w", err)
	}
	return k.renewLease(ctx, node)
}

// heartbeat renews the Lease every LeasePeriod and the Node status every sixth period.
func (k *Kubelet) heartbeat(ctx context.Context) {
	t := time.NewTicker(k.cfg.LeasePeriod)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		node, err := k.client.CoreV1().Nodes().Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			err = k.tryRegisterNode(ctx)
		} else if err == nil {
			err = k.renewLease(ctx, node)
			if err == nil && n%6 == 0 {
				node.Status = k.nodeStatus(metav1.Now(), node.Status.Conditions)
				_, err = k.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
			}
		}
		if err != nil && ctx.Err() == nil {
			k.log.Warn("node heartbeat", "err", err)
		}
	}
}

func (k *Kubelet) renewLease(ctx context.Context, node *corev1.Node) error {
	leases := k.client.CoordinationV1().Leases(leaseNamespace)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{
				Name: k.cfg.NodeName, Namespace: leaseNamespace,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}},
			},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(k.cfg.NodeName),
				LeaseDurationSeconds: ptr.To(int32(40)),
				RenewTime:            &now,
			},
		}
		_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create lease: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get lease: %w", err)
	}
	lease.Spec.HolderIdentity = ptr.To(k.cfg.NodeName)
	lease.Spec.RenewTime = &now
	if _, err := leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	return nil
}

// daemonEndpoints advertises the kubelet API port (KubeletPort) the apiserver connects to for
// logs, exec and port-forward; none when KubeletPort is 0.
func (k *Kubelet) daemonEndpoints() corev1.NodeDaemonEndpoints {
	return corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: k.cfg.KubeletPort}}
}
