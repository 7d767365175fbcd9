package command

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
	"github.com/weftmesh/weft/viz/tap"
)

// streamIDs numbers the tapped pods' streams in order of appearance, so
// that ids read like Linkerd's: id=STREAM:REQUEST.
type streamIDs struct{ n map[string]int }

func (s *streamIDs) id(ev tap.Event) string {
	if s.n == nil {
		s.n = map[string]int{}
	}
	key := ev.Namespace + "/" + ev.Pod
	n, ok := s.n[key]
	if !ok {
		n = len(s.n)
		s.n[key] = n
	}
	return strconv.Itoa(n) + ":" + strconv.FormatUint(ev.Event.GetId(), 10)
}

// tapLine renders ev in Linkerd's tap shape:
//
//	req id=0:1 proxy=in src=sa/traffic dst=deploy/web tls=true :method=GET :authority=web:8080 :path=/
//	rsp id=0:1 proxy=in src=sa/traffic dst=deploy/web tls=true :status=200 latency=812µs
//	end id=0:1 proxy=in src=sa/traffic dst=deploy/web tls=true duration=903µs response-length=120B
//
// wide adds both ends' namespaces, pods and identities.
func tapLine(ev tap.Event, ids *streamIDs, wide bool) string {
	e := ev.Event
	if lost, ok := e.GetKind().(*tapv1.Event_Lost); ok {
		return fmt.Sprintf("lost pod=%s/%s events=%d (the proxy dropped them: slow stream or --max-rps)", ev.Namespace, ev.Pod, lost.Lost.GetEvents())
	}
	src, dst := tap.Peers(ev)
	proxy := "in"
	if e.GetDirection() == "outbound" {
		proxy = "out"
	}
	var b strings.Builder
	head := func(kind string) {
		fmt.Fprintf(&b, "%s id=%s proxy=%s src=%s dst=%s tls=%t", kind, ids.id(ev), proxy, src.Name(), dst.Name(), e.GetTls())
	}
	switch k := e.GetKind().(type) {
	case *tapv1.Event_Request:
		head("req")
		r := k.Request
		fmt.Fprintf(&b, " :method=%s :authority=%s :path=%s", r.GetMethod(), r.GetAuthority(), r.GetPath())
	case *tapv1.Event_Response:
		head("rsp")
		fmt.Fprintf(&b, " :status=%d latency=%dµs", k.Response.GetStatus(), k.Response.GetLatencyUs())
	case *tapv1.Event_End:
		head("end")
		end := k.End
		if g := end.GetGrpcStatus(); g >= 0 {
			fmt.Fprintf(&b, " grpc-status=%d", g)
		}
		fmt.Fprintf(&b, " duration=%dµs response-length=%dB", end.GetDurationUs(), end.GetResponseBytes())
		if end.GetErrorKind() != "" {
			fmt.Fprintf(&b, " error=%s", end.GetErrorKind())
		}
		if end.GetReset_() {
			b.WriteString(" reset=true")
		}
	default:
		head("unknown")
	}
	if wide {
		for _, f := range []struct{ k, v string }{
			{"src_ns", src.Namespace}, {"src_pod", src.Pod}, {"src_addr", src.Addr}, {"src_id", src.Identity},
			{"dst_ns", dst.Namespace}, {"dst_pod", dst.Pod}, {"dst_addr", dst.Addr}, {"dst_id", dst.Identity},
		} {
			if f.v != "" {
				fmt.Fprintf(&b, " %s=%s", f.k, f.v)
			}
		}
	}
	return b.String()
}

// tapJSONLine is one -o json line: the tapped pod, both ends and the
// proxy's event.
type tapJSONLine struct {
	Namespace   string          `json:"namespace"`
	Pod         string          `json:"pod"`
	Workload    string          `json:"workload,omitempty"`
	Source      tap.Peer        `json:"source"`
	Destination tap.Peer        `json:"destination"`
	Event       json.RawMessage `json:"event"`
}

func tapJSON(ev tap.Event) (string, error) {
	raw, err := protojson.MarshalOptions{UseProtoNames: false}.Marshal(ev.Event)
	if err != nil {
		return "", fmt.Errorf("encode tap event: %w", err)
	}
	src, dst := tap.Peers(ev)
	b, err := json.Marshal(tapJSONLine{Namespace: ev.Namespace, Pod: ev.Pod, Workload: ev.Workload, Source: src, Destination: dst, Event: raw})
	if err != nil {
		return "", fmt.Errorf("encode tap event: %w", err)
	}
	return string(b), nil
}
