package kubeletapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// followPoll is how often a followed log is checked for new records.
const followPoll = 100 * time.Millisecond

// limitWriter stops after n bytes (n <= 0: no limit) and reports errLimit.
type limitWriter struct {
	w io.Writer
	n int64
}

var errLimit = errors.New("limitBytes reached")

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return l.w.Write(p)
	}
	cut := false
	if int64(len(p)) > l.n {
		p, cut = p[:l.n], true
	}
	n, err := l.w.Write(p)
	l.n -= int64(n)
	if err == nil && (cut || l.n == 0) {
		err = errLimit
	}
	return n, err
}

// logSource is the container a log request reads.
type logSource struct {
	path    string
	running func() bool // reports whether the instance writing path still runs (follow ends when not)
}

// writeLog writes the records of src selected by o to w; with o.follow it keeps writing new
// records until ctx ends or the container stops.
func writeLog(ctx context.Context, w io.Writer, src logSource, o logOptions) error {
	f, err := os.Open(src.path)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer f.Close()
	lw := &limitWriter{w: w, n: o.limitBytes}
	flush := func() {
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
	}
	br := bufio.NewReader(f)
	var recs []record
	var pending []byte // an incomplete last line (still being written)
	readAll := func() error {
		for {
			line, err := br.ReadBytes('\n')
			if err == io.EOF {
				pending = append(pending, line...)
				return nil
			}
			if err != nil {
				return err
			}
			if len(pending) > 0 {
				line, pending = append(pending, line...), nil
			}
			if r, ok := parseRecord(bytes.TrimSuffix(line, []byte{'\n'})); ok {
				recs = append(recs, r)
			}
		}
	}
	emit := func(sel []record) error {
		var buf []byte
		for _, r := range sel {
			buf = o.render(buf, r)
		}
		if len(buf) == 0 {
			return nil
		}
		_, err := lw.Write(buf)
		flush()
		return err
	}
	if err := readAll(); err != nil {
		return err
	}
	if err := emit(o.selectRecords(recs)); err != nil {
		return ignoreLimit(err)
	}
	if !o.follow {
		return nil
	}
	since := o.since
	t := time.NewTicker(followPoll)
	defer t.Stop()
	for {
		stopped := src.running == nil || !src.running()
		recs = recs[:0]
		if err := readAll(); err != nil {
			return err
		}
		sel := recs
		if !since.IsZero() {
			sel = logOptions{since: since, tailLines: -1}.selectRecords(recs)
		}
		if err := emit(sel); err != nil {
			return ignoreLimit(err)
		}
		if stopped {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func ignoreLimit(err error) error {
	if errors.Is(err, errLimit) {
		return nil
	}
	return err
}
