package sim

import (
	"fmt"
	"net"
	"net/http"
	"time"
)

// window is an outage in absolute time.
type window struct {
	kind       string
	start, end time.Time
}

// StartOutage opens an outage o.Start from now, for o.Length: every API
// call in it fails as o.Kind says (the inspection endpoints keep working,
// except while a refused outage has the port closed).
func (s *Server) StartOutage(o Outage) error {
	if !outageKinds[o.Kind] || o.Length <= 0 {
		return fmt.Errorf("outage %+v: want kind E503, http503, reset or refused and a length", o)
	}
	s.addOutage(o, time.Now())
	return nil
}

func (s *Server) addOutage(o Outage, from time.Time) {
	w := window{kind: o.Kind, start: from.Add(time.Duration(o.Start))}
	w.end = w.start.Add(time.Duration(o.Length))
	s.mu.Lock()
	s.outages = append(s.outages, w)
	s.mu.Unlock()
	if o.Kind == "refused" {
		time.AfterFunc(time.Until(w.start), func() { s.closePort(w.end) })
	}
}

// outageNow is the kind of the outage in force ("" when none).
func (s *Server) outageNow() string {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.outages {
		if !now.Before(w.start) && now.Before(w.end) {
			return w.kind
		}
	}
	return ""
}

// Outages lists the outage windows (for reports).
func (s *Server) Outages() []Outage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Outage, 0, len(s.outages))
	for _, w := range s.outages {
		out = append(out, Outage{Kind: w.kind, Start: Duration(w.start.Sub(s.born)), Length: Duration(w.end.Sub(w.start))})
	}
	return out
}

func (s *Server) injectOutage(w http.ResponseWriter, r *http.Request, kind string) {
	switch kind {
	case "E503":
		writeFailure(w, fail("E503"), "")
	case "http503":
		s.injectTransport(w, r, "http503")
	default: // reset, and refused on a connection opened before the port closed
		s.injectTransport(w, r, "reset")
	}
}

// closePort stops listening until end, so that new connections are
// refused, then listens on the same address again.
func (s *Server) closePort(end time.Time) {
	s.mu.Lock()
	l := s.listener
	if l == nil || s.refused || s.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.refused = true
	s.mu.Unlock()
	l.Close() // Serve returns; open keep-alive connections are reset by injectOutage
	time.AfterFunc(time.Until(end), s.reopen)
}

func (s *Server) reopen() {
	for try := 0; ; try++ {
		if s.ctx.Err() != nil {
			return
		}
		l, err := net.Listen("tcp", s.addr)
		if err == nil {
			s.mu.Lock()
			s.listener, s.refused = l, false
			s.mu.Unlock()
			go s.srv.Serve(l)
			return
		}
		if try > 100 {
			return // the port was taken meanwhile: the outage never ends
		}
		time.Sleep(20 * time.Millisecond)
	}
}
