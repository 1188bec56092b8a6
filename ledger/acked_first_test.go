package ledger

import (
	"context"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// The first update of a new record goes to the slot the creation left
// empty: a torn first update leaves the record of the creation, and the
// ledger opens.
func TestAcknowledgedRecordFirstUpdateTorn(t *testing.T) {
	fs := vfs.NewMem()
	l := openTest(t, fs, "db")
	if _, err := l.Append(context.Background(), rec(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.Close()
	cur, err := readAck(fs, "db")
	if err != nil || cur.seq != 2 || cur.size != 1 {
		t.Fatalf("record %+v, %v; want seq 2, size 1", cur, err)
	}
	tearAckSlot(t, fs, "db", cur.seq)
	if r, err := readAck(fs, "db"); err != nil || r.seq != 1 {
		t.Fatalf("after a torn first update: %+v, %v; want the creation's record", r, err)
	}
	l = openTest(t, fs, "db")
	l.Close()
}
