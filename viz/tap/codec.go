package tap

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protojson"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
)

// wire is an Event as one JSON line: pod facts plus the protojson event.
type wire struct {
	Namespace string          `json:"namespace"`
	Pod       string          `json:"pod"`
	Workload  string          `json:"workload,omitempty"`
	SrcNS     string          `json:"sourceNamespace,omitempty"`
	SrcWL     string          `json:"sourceWorkload,omitempty"`
	Event     json.RawMessage `json:"event"`
}

// WriteEvent writes ev as one JSON line.
func WriteEvent(w io.Writer, ev Event) error {
	b, err := protojson.Marshal(ev.Event)
	if err != nil {
		return fmt.Errorf("encode tap event: %w", err)
	}
	line, err := json.Marshal(wire{Namespace: ev.Namespace, Pod: ev.Pod, Workload: ev.Workload, SrcNS: ev.SourceNamespace, SrcWL: ev.SourceWorkload, Event: b})
	if err != nil {
		return fmt.Errorf("encode tap event: %w", err)
	}
	_, err = w.Write(append(line, '\n'))
	return err
}

// MaxLine bounds one event line.
const MaxLine = 1 << 20

// Decoder reads the JSON lines WriteEvent writes.
type Decoder struct{ s *bufio.Scanner }

// NewDecoder reads events from r.
func NewDecoder(r io.Reader) *Decoder {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64<<10), MaxLine)
	return &Decoder{s: s}
}

// Next returns the next event, or io.EOF at the end of the stream.
func (d *Decoder) Next() (Event, error) {
	for d.s.Scan() {
		line := d.s.Bytes()
		if len(line) == 0 {
			continue
		}
		return DecodeLine(line)
	}
	if err := d.s.Err(); err != nil {
		return Event{}, fmt.Errorf("read tap stream: %w", err)
	}
	return Event{}, io.EOF
}

// DecodeLine parses one event line.
func DecodeLine(line []byte) (Event, error) {
	var w wire
	if err := json.Unmarshal(line, &w); err != nil {
		return Event{}, fmt.Errorf("tap event line: %w", err)
	}
	ev := &tapv1.Event{}
	if len(w.Event) > 0 {
		if err := protojson.Unmarshal(w.Event, ev); err != nil {
			return Event{}, fmt.Errorf("tap event line: %w", err)
		}
	}
	return Event{Namespace: w.Namespace, Pod: w.Pod, Workload: w.Workload, SourceNamespace: w.SrcNS, SourceWorkload: w.SrcWL, Event: ev}, nil
}
