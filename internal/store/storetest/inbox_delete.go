package storetest

import (
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// testDeleteMessage: a deleted message is no longer listed or counted as
// unread, its text is gone from the store, an email of it not yet sent is
// withdrawn, and the notice run does not post it again; another account's
// message and a second delete are NotFound.
func testDeleteMessage(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acc_del1")
	mkAccount(t, s, "acc_del2")
	for _, id := range []string{"msg_del1", "msg_del2"} {
		must(t, "PostMessage", s.PostMessage(ctx, &store.Message{ID: id, AccountID: "acc_del1", Kind: "k",
			Sealed: []byte("sealed secret " + id), CreatedAt: t0()}))
	}
	wantCode(t, "DeleteMessage of another account", s.DeleteMessage(ctx, "acc_del2", "msg_del1", t0()), errs.NotFound)
	must(t, "DeleteMessage", s.DeleteMessage(ctx, "acc_del1", "msg_del1", t0().Add(time.Minute)))
	wantCode(t, "DeleteMessage twice", s.DeleteMessage(ctx, "acc_del1", "msg_del1", t0()), errs.NotFound)
	ms, unread, err := s.Messages(ctx, "acc_del1", 10)
	must(t, "Messages", err)
	if len(ms) != 1 || ms[0].ID != "msg_del2" || unread != 1 {
		t.Fatalf("after deleting: got %+v, %d unread; want only msg_del2, unread", ms, unread)
	}

	// A notice run's message whose email is pending: deleting it
	// withdraws the email, and the run does not post it again.
	run := &store.NoticeRun{ID: "run_del", Kind: "announcement", Subject: "Run subject", Body: "Run body", Email: true, CreatedAt: t0()}
	must(t, "CreateNoticeRun", s.CreateNoticeRun(ctx, run))
	n, err := s.PostNoticeBatch(ctx, run, store.Flags{}, []string{"msg_run1", "msg_run2", "msg_run3", "msg_run4", "msg_run5"}, t0(), 5)
	must(t, "PostNoticeBatch", err)
	if n == 0 {
		t.Fatal("the run posted nothing")
	}
	ms, _, err = s.Messages(ctx, "acc_del1", 10)
	must(t, "Messages", err)
	var runMsg string
	for _, m := range ms {
		if m.NoticeRun == "run_del" {
			runMsg = m.ID
		}
	}
	if runMsg == "" {
		t.Fatalf("acc_del1 did not get the run's message: %+v", ms)
	}
	must(t, "DeleteMessage of a run's message", s.DeleteMessage(ctx, "acc_del1", runMsg, t0()))
	if n, err := s.PostNoticeBatch(ctx, run, store.Flags{}, []string{"msg_run6", "msg_run7", "msg_run8", "msg_run9", "msg_runa"}, t0(), 5); err != nil || n != 0 {
		t.Fatalf("the run posted %d more (%v) after a deletion, want 0", n, err)
	}
	rs, err := s.ClaimNoticeEmails(ctx, "run_del", 100)
	must(t, "ClaimNoticeEmails", err)
	for _, r := range rs {
		if r.MessageID == runMsg {
			t.Fatalf("the email of a deleted message was claimed: %+v", r)
		}
	}
}
