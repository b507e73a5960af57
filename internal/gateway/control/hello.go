package control

import (
	"context"
	"net/http"
	"time"

	"github.com/nitronet/nitronet/internal/gwproto"
)

// Hello sends the gateway's start-up report and returns its record as the
// server now holds it. A server that predates the call answers 404.
func (c *Client) Hello(ctx context.Context, req gwproto.HelloRequest) (gwproto.HelloResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var resp gwproto.HelloResponse
	if err := c.do(ctx, "hello", http.MethodPost, "/api/v1/gateway/hello", nil, req, &resp, true); err != nil {
		return gwproto.HelloResponse{}, err
	}
	return resp, nil
}
