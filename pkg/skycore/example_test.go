package skycore_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
)

func ExampleClient_SendSavedMMS() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>E106</ERRORCODE><ERRORINFO>You can call API every 5 seconds</ERRORINFO></RESPONSE>`)
	}))
	defer srv.Close()

	req, _ := sendreq.Decode([]byte(`{"id":"a1","to":"17743199144","from":"60856","mmsId":1000}`))
	c := skycore.New(srv.URL)
	_, err := c.SendSavedMMS(context.Background(), "key", req)
	e, _ := apperr.As(err)
	fmt.Println(e.Code, e.Class, e.Wait)
	// Output: E106 retry 5s
}
