package kubeletapi

import (
	"bytes"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// logOptions are the query parameters of /containerLogs (kubelet's names and meaning).
type logOptions struct {
	follow, previous, timestamps bool
	tailLines                    int64 // -1 means all
	limitBytes                   int64 // 0 means no limit
	since                        time.Time
}

// parseLogOptions reads the /containerLogs query; now anchors sinceSeconds.
func parseLogOptions(q url.Values, now time.Time) (logOptions, error) {
	o := logOptions{tailLines: -1}
	var err error
	boolean := func(name string) bool {
		if err != nil || !q.Has(name) {
			return false
		}
		v, perr := strconv.ParseBool(q.Get(name))
		if perr != nil {
			err = fmt.Errorf("%s=%q: want true or false", name, q.Get(name))
		}
		return v
	}
	o.follow, o.previous, o.timestamps = boolean("follow"), boolean("previous"), boolean("timestamps")
	integer := func(name string, dst *int64) {
		if err != nil || !q.Has(name) {
			return
		}
		v, perr := strconv.ParseInt(q.Get(name), 10, 64)
		if perr != nil || v < 0 {
			err = fmt.Errorf("%s=%q: want a non-negative integer", name, q.Get(name))
			return
		}
		*dst = v
	}
	integer("tailLines", &o.tailLines)
	integer("limitBytes", &o.limitBytes)
	var sinceSeconds int64
	integer("sinceSeconds", &sinceSeconds)
	if err != nil {
		return logOptions{}, err
	}
	if q.Has("sinceSeconds") && q.Has("sinceTime") {
		return logOptions{}, fmt.Errorf("sinceSeconds and sinceTime: give at most one")
	}
	if sinceSeconds > 0 {
		o.since = now.Add(-time.Duration(sinceSeconds) * time.Second)
	}
	if s := q.Get("sinceTime"); s != "" {
		t, perr := time.Parse(time.RFC3339, s)
		if perr != nil {
			return logOptions{}, fmt.Errorf("sinceTime=%q: want an RFC 3339 time: %w", s, perr)
		}
		o.since = t
	}
	return o, nil
}

// record is one parsed line of a CRI log file.
type record struct {
	at      time.Time
	stream  string
	partial bool
	body    []byte
}

// parseRecord parses "TIME STREAM TAG BODY"; ok is false for malformed lines.
func parseRecord(line []byte) (record, bool) {
	var r record
	f := bytes.SplitN(line, []byte{' '}, 4)
	if len(f) < 3 {
		return r, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(f[0]))
	if err != nil {
		return r, false
	}
	r.at, r.stream, r.partial = t, string(f[1]), string(f[2]) == "P"
	if len(f) == 4 {
		r.body = f[3]
	}
	return r, true
}

// render appends the record as kubelet prints it: the body, a newline unless partial, with
// timestamps the RFC 3339 time first.
func (o logOptions) render(dst []byte, r record) []byte {
	if o.timestamps {
		dst = r.at.UTC().AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, ' ')
	}
	dst = append(dst, r.body...)
	if !r.partial {
		dst = append(dst, '\n')
	}
	return dst
}

// selectRecords applies since and tailLines to the records of a log (in order). tailLines
// counts full lines, as kubelet does.
func (o logOptions) selectRecords(recs []record) []record {
	if !o.since.IsZero() {
		i := 0
		for i < len(recs) && recs[i].at.Before(o.since) {
			i++
		}
		recs = recs[i:]
	}
	if o.tailLines >= 0 {
		lines, i := int64(0), len(recs)
		for i > 0 {
			if !recs[i-1].partial {
				if lines == o.tailLines {
					break
				}
				lines++
			}
			i--
		}
		recs = recs[i:]
	}
	return recs
}
