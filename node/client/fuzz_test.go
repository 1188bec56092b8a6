package client

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzReadEvent: any byte stream parses without panicking, to events whose
// id and type hold no line feed (and the id no NUL), and what the node writes parses back to what
// it wrote.
func FuzzReadEvent(f *testing.F) {
	f.Add([]byte(": subscribed\n\nid: 7\n\nid: 8\nevent: message\ndata: {\"a\":1}\n\n: heartbeat\n\n"))
	f.Add([]byte("event: gap\ndata: {\"after\":1,\"oldest\":9}\n\n"))
	f.Add([]byte("data: a\r\ndata: b\r\n\r\nid\nevent\ndata\n\n"))
	f.Add([]byte("id: 1\x00\ndata:x\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReader(bytes.NewReader(in))
		for range 64 {
			var pos []string
			ev, err := readEvent(br, func() {}, func(id string) { pos = append(pos, id) })
			for _, id := range pos {
				if id == "" || strings.ContainsAny(id, "\n\x00") {
					t.Fatalf("position %q", id)
				}
			}
			if err != nil {
				return
			}
			if ev.Type == "" || strings.ContainsAny(ev.ID+ev.Type, "\n") || strings.ContainsRune(ev.ID, 0) {
				t.Fatalf("event %+v", ev)
			}
		}
	})
}

// What the node writes (one id, type and single-line JSON data per event)
// reads back unchanged.
func TestReadEventRoundTrip(t *testing.T) {
	data, _ := json.Marshal(map[string]any{"note": "a\nb", "n": 1})
	in := ": subscribed\n\nid: 41\n\nid: 42\nevent: commitment\ndata: " + string(data) + "\n\n"
	var pos []string
	ev, err := readEvent(bufio.NewReader(strings.NewReader(in)), func() {}, func(id string) { pos = append(pos, id) })
	if err != nil || ev.ID != "42" || ev.Type != "commitment" || string(ev.Data) != string(data) || len(pos) != 1 || pos[0] != "41" {
		t.Fatalf("read %+v %v, position %v", ev, err, pos)
	}
	if _, err := readEvent(bufio.NewReader(strings.NewReader("id: 1\ndata: x")), func() {}, func(string) {}); err == nil {
		t.Fatal("an event cut off by the end of the input was returned")
	}
}
