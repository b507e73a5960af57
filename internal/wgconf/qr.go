package wgconf

import (
	"fmt"

	qrcode "github.com/skip2/go-qrcode"
)

// QR returns text as a QR code drawn with Unicode half blocks, two modules
// per character cell, for printing on a terminal with a dark background.
// The text usually is Config.Render output and so holds the private key: the
// result is for the user's own screen only.
func QR(text string) (string, error) {
	q, err := qrcode.New(text, qrcode.Low)
	if err != nil {
		return "", fmt.Errorf("qr: %w", err)
	}
	return q.ToSmallString(false), nil
}
