package ops

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// scanner is the one call `suppress list` needs besides the store: the
// functions never scan, so the store takes it as an argument.
type scanner interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Suppression is one live entry of the suppression list, as printed.
type Suppression struct {
	Key      string `json:"key"` // the number, number#campaignRef or number@code
	Number   string `json:"number"`
	From     string `json:"from"`     // the code the entry is for; "" for every code
	Campaign string `json:"campaign"` // the campaignRef the entry is for; "" for every campaign
	Code     string `json:"code"`     // the rejected event's code: Skycore's refusal, or OPTED_OUT
	Source   string `json:"source"`   // E110, E114, E715, keyword, operator
	Reason   string `json:"reason"`   // the keyword written, or the operator's --reason
	ID       string `json:"id"`       // the request Skycore refused, or the inbound message of the keyword
	Since    string `json:"since"`
	Until    string `json:"until"` // "" until lifted
}

// Suppressions lists the live suppressions, by key.
func Suppressions(ctx context.Context, st *store.Store, db scanner) ([]Suppression, error) {
	sups, err := st.Suppressions(ctx, db)
	if err != nil {
		return nil, err
	}
	out := []Suppression{}
	for _, s := range sups {
		number, campaign, _ := strings.Cut(s.Key, "#")
		number, from, _ := strings.Cut(number, "@")
		until := ""
		if !s.Until.IsZero() {
			until = stamp(s.Until)
		}
		out = append(out, Suppression{Key: s.Key, Number: number, From: from, Campaign: campaign, Code: s.Code,
			Source: s.Source, Reason: s.Reason, ID: s.ID, Since: stamp(s.At), Until: until})
	}
	return out, nil
}

// WriteSuppressions prints the list as a table, or as a JSON array.
func WriteSuppressions(w io.Writer, sups []Suppression, asJSON bool) error {
	if asJSON {
		return writeJSON(w, sups)
	}
	if len(sups) == 0 {
		_, err := fmt.Fprintln(w, "no live suppressions")
		return err
	}
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NUMBER\tFROM\tCAMPAIGN\tCODE\tSOURCE\tSINCE\tUNTIL\tREQUEST\tREASON")
	for _, s := range sups {
		until := "(until lifted)"
		if s.Until != "" {
			until = seconds(s.Until)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Number, or(s.From, "(all)"), or(s.Campaign, "(all)"), s.Code, s.Source,
			seconds(s.Since), until, or(s.ID, "-"), or(printable(s.Reason), "-"))
	}
	return tw.Flush()
}

// printable keeps a reason on its line (it may come from a person's
// message): control characters become spaces.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func seconds(s string) string {
	t := parseStamp(s)
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// MaxReason is the longest --reason kept.
const MaxReason = 512

// Add puts number on the list until lifted, for requests from the code
// from ("" for every code), with the operator's reason: its requests are
// rejected with OPTED_OUT and no Skycore call. It returns the entry's key.
func Add(ctx context.Context, st *store.Store, number, from, reason string) (string, error) {
	to, err := phoneNumber(number)
	if err != nil {
		return "", err
	}
	if from != "" && !allDigits(from) {
		return "", fmt.Errorf("--from %q: a short or long code is digits only", from)
	}
	if len(reason) > MaxReason {
		return "", fmt.Errorf("--reason is %d bytes; at most %d", len(reason), MaxReason)
	}
	if err := st.SuppressByOperator(ctx, to, from, reason); err != nil {
		return "", err
	}
	return store.OptOutKey(to, from), nil
}

// phoneNumber reads a number as the sender reads a request's "to"
// (sendreq.PhoneDigits, docs/request.md): digits, with an optional leading
// + and spaces, -, ., (, ) among them; 7-15 digits.
func phoneNumber(v string) (string, error) {
	d, ok := sendreq.PhoneDigits(v)
	if !ok {
		return "", fmt.Errorf("%q is not a phone number (digits, with an optional + and separators)", v)
	}
	if n := len(d); n < sendreq.MinToDigits || n > sendreq.MaxToDigits {
		return "", fmt.Errorf("%q is not a phone number: %d digits, want %d-%d", v, n, sendreq.MinToDigits, sendreq.MaxToDigits)
	}
	return d, nil
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// Lift ends the suppression of number: the entry for every code and
// campaign, or within campaign, or for requests from the code from;
// ErrNotFound when there is no live one.
func Lift(ctx context.Context, st *store.Store, number, campaign, from string) (string, error) {
	to := number
	if n, err := phoneNumber(number); err == nil {
		to = n
	}
	key := store.SuppressionKey(to, campaign)
	if from != "" {
		key = store.OptOutKey(to, from)
	}
	lifted, err := st.Lift(ctx, key)
	if err != nil {
		return "", err
	}
	if !lifted {
		hint := ""
		if campaign == "" && from == "" {
			hint = " (an entry for one campaign needs --campaign, one for a code --from; `mmsgate suppress list` shows them)"
		}
		return "", fmt.Errorf("no live suppression of %s%s: %w", key, hint, ErrNotFound)
	}
	return key, nil
}
