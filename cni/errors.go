package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Error codes of the CNI specification used by the plugin.
const (
	CodeIncompatibleVersion = 1
	CodeInvalidEnvironment  = 4
	CodeIOFailure           = 5
	CodeDecodingFailure     = 6
	CodeInvalidConfig       = 7
	CodeInternal            = 999
)

// Error is a CNI error result: printed on stdout as JSON with exit status 1.
type Error struct {
	CNIVersion string `json:"cniVersion,omitempty"`
	Code       int    `json:"code"`
	Msg        string `json:"msg"`
	Details    string `json:"details,omitempty"`
}

func (e *Error) Error() string {
	if e.Details != "" {
		return fmt.Sprintf("%s; %s", e.Msg, e.Details)
	}
	return e.Msg
}

func newError(code int, err error) *Error {
	return &Error{Code: code, Msg: err.Error()}
}

// asError turns any error into a CNI error: a delegate's error keeps its
// code, anything else is an internal error.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return &Error{Code: e.Code, Msg: err.Error(), Details: e.Details}
	}
	return newError(CodeInternal, err)
}

func writeError(w io.Writer, version string, e *Error) {
	out := *e
	out.CNIVersion = version
	data, err := json.Marshal(out)
	if err != nil {
		data = []byte(`{"code":999,"msg":"cannot encode error"}`)
	}
	w.Write(append(data, '\n'))
}
