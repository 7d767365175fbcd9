package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Container logs are written in the CRI log format kubelet reads (one record per line):
//
//	2026-12-07T06:00:00.123456789Z stdout F the line
//
// where the tag is F for a full line and P for a partial one (a line longer than
// maxLogLine, or output cut off without a newline). The kubelet API parses them back
// (e2e/node/kubeletapi) for timestamps, sinceTime and the stream.

// maxLogLine is the longest record body; longer lines are split into P records.
const maxLogLine = 16 << 10

// PreviousLogPath is where a container's log moves when the container restarts: the log
// `kubectl logs --previous` shows.
func PreviousLogPath(logPath string) string {
	return logPath[:len(logPath)-len(".log")] + ".previous.log"
}

// logSink serialises the records of one container instance into its log file.
type logSink struct {
	mu sync.Mutex
	f  *os.File
	wg sync.WaitGroup
}

// openLog rotates the container's previous log (if any) to PreviousLogPath and opens a fresh one.
func openLog(path string) (*logSink, error) {
	if st, err := os.Stat(path); err == nil && st.Size() > 0 {
		if err := os.Rename(path, PreviousLogPath(path)); err != nil {
			return nil, fmt.Errorf("keep previous container log: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open container log: %w", err)
	}
	return &logSink{f: f}, nil
}

// pipe returns the write end to hand the container as stdout or stderr; a goroutine copies
// what it reads into records of the given stream until every writer closed it.
func (s *logSink) pipe(stream string) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("log pipe: %w", err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer r.Close()
		s.copy(stream, r)
	}()
	return w, nil
}

func (s *logSink) copy(stream string, r io.Reader) {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			tag := "P"
			if line[len(line)-1] == '\n' {
				tag, line = "F", line[:len(line)-1]
			}
			s.write(stream, tag, line)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

func (s *logSink) write(stream, tag string, body []byte) {
	rec := make([]byte, 0, len(body)+48)
	rec = time.Now().UTC().AppendFormat(rec, time.RFC3339Nano)
	rec = append(rec, ' ')
	rec = append(rec, stream...)
	rec = append(rec, ' ')
	rec = append(rec, tag...)
	rec = append(rec, ' ')
	rec = append(rec, body...)
	rec = append(rec, '\n')
	s.mu.Lock()
	_, _ = s.f.Write(rec)
	s.mu.Unlock()
}

// close waits for the copiers (they end when the last writer of each pipe is gone) and closes
// the file.
func (s *logSink) close() {
	s.wg.Wait()
	s.f.Close()
}
