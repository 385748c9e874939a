package rehearsal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// cloudWatch calls a CloudWatch action over the query protocol. The
// service's Go client (v1.76) speaks Smithy RPC v2 CBOR, which moto 5.2.1
// does not serve (404); AWS serves both.
func (d *Deployment) cloudWatch(ctx context.Context, action string, params url.Values) error {
	params.Set("Action", action)
	params.Set("Version", "2010-08-01")
	body := params.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, *d.c.cfg.BaseEndpoint+"/", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	creds, err := d.c.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return err
	}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "monitoring", Region, time.Now()); err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("CloudWatch %s: HTTP %d: %s", action, resp.StatusCode, b)
	}
	return nil
}
