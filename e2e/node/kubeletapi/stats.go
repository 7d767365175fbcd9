package kubeletapi

import (
	"bufio"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The /stats/summary shapes: the subset of kubelet's stats/v1alpha1 Summary weft fills in
// (field names match, so metrics-server style readers decode it).
type (
	summary struct {
		Node nodeStats  `json:"node"`
		Pods []podStats `json:"pods"`
	}
	nodeStats struct {
		NodeName  string      `json:"nodeName"`
		StartTime metav1.Time `json:"startTime"`
	}
	podStats struct {
		PodRef     podRef           `json:"podRef"`
		StartTime  metav1.Time      `json:"startTime"`
		Containers []containerStats `json:"containers"`
	}
	podRef struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
		UID       string `json:"uid"`
	}
	containerStats struct {
		Name      string       `json:"name"`
		StartTime metav1.Time  `json:"startTime"`
		CPU       *cpuStats    `json:"cpu,omitempty"`
		Memory    *memoryStats `json:"memory,omitempty"`
	}
	cpuStats struct {
		Time                 metav1.Time `json:"time"`
		UsageCoreNanoSeconds uint64      `json:"usageCoreNanoSeconds"`
	}
	memoryStats struct {
		Time            metav1.Time `json:"time"`
		WorkingSetBytes uint64      `json:"workingSetBytes"`
		RSSBytes        uint64      `json:"rssBytes"`
	}
)

var agentStart = metav1.Now()

// statsSummary reports each running container's CPU time and resident memory, read from
// /proc for the container's main process.
func (s *Server) statsSummary(w http.ResponseWriter, _ *http.Request) {
	sum := summary{Node: nodeStats{NodeName: s.cfg.NodeName, StartTime: agentStart}, Pods: []podStats{}}
	now := metav1.NewTime(time.Now())
	for _, p := range s.cfg.Node.Pods() {
		ps := podStats{PodRef: podRef{Name: p.Name, Namespace: p.Namespace, UID: string(p.UID)}}
		if p.Status.StartTime != nil {
			ps.StartTime = *p.Status.StartTime
		}
		for _, c := range append(append([]string{}, names(p.Spec.InitContainers)...), names(p.Spec.Containers)...) {
			ref, err := s.cfg.Node.Container(p.Namespace, p.Name, c)
			if err != nil || ref.Pid == 0 {
				continue
			}
			cs := containerStats{Name: c, StartTime: ps.StartTime}
			if ns, ok := cpuNanos(ref.Pid); ok {
				cs.CPU = &cpuStats{Time: now, UsageCoreNanoSeconds: ns}
			}
			if rss, ok := rssBytes(ref.Pid); ok {
				cs.Memory = &memoryStats{Time: now, WorkingSetBytes: rss, RSSBytes: rss}
			}
			ps.Containers = append(ps.Containers, cs)
		}
		sum.Pods = append(sum.Pods, ps)
	}
	writeJSON(w, sum)
}

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100

// cpuNanos is the process's user+system CPU time (/proc/PID/stat fields 14 and 15).
func cpuNanos(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return (ut + st) * uint64(time.Second) / clockTicks, true
}

// rssBytes is the process's resident set (/proc/PID/status VmRSS).
func rssBytes(pid int) (uint64, bool) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				return 0, false
			}
			kb, err := strconv.ParseUint(fields[0], 10, 64)
			return kb * 1024, err == nil
		}
	}
	return 0, false
}
func names(list []corev1.Container) []string {
	out := make([]string, 0, len(list))
	for _, c := range list {
		out = append(out, c.Name)
	}
	return out
}
