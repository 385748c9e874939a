package apperr

import "net/http"

// statuses is the one code→HTTP status table (the postback endpoint's
// answers). A payload that can never be processed gets 200: Skycore's retry
// would not fix it.
var statuses = map[Code]int{
	CodeForbidden:   http.StatusForbidden,
	CodeMethod:      http.StatusMethodNotAllowed,
	CodeTooLarge:    http.StatusRequestEntityTooLarge,
	CodeMalformed:   http.StatusOK,
	CodeUnavailable: http.StatusServiceUnavailable,
	CodeBusy:        http.StatusServiceUnavailable,
	CodeTimeout:     http.StatusServiceUnavailable,
	CodeInternal:    http.StatusInternalServerError,
	CodeStore:       http.StatusServiceUnavailable,
	CodeConflict:    http.StatusOK,
}

// HTTPStatus maps err to the status the postback endpoint answers with;
// nil is 200, an unknown error 500.
func HTTPStatus(err error) int {
	if err == nil {
		return http.StatusOK
	}
	if s, ok := statuses[CodeOf(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}
