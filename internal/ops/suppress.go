package ops

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/mmsgate/mmsgate/pkg/store"
)

// scanner is the one call `suppress list` needs besides the store: the
// functions never scan, so the store takes it as an argument.
type scanner interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Suppression is one live entry of the suppression list, as printed.
type Suppression struct {
	Key      string `json:"key"` // the number, or number#campaignRef
	Number   string `json:"number"`
	Campaign string `json:"campaign"` // "" for the number in every campaign
	Code     string `json:"code"`     // Skycore's refusal
	ID       string `json:"id"`       // the request it refused
	Since    string `json:"since"`
	Until    string `json:"until"`
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
		out = append(out, Suppression{Key: s.Key, Number: number, Campaign: campaign, Code: s.Code, ID: s.ID,
			Since: stamp(s.At), Until: stamp(s.Until)})
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
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NUMBER\tCAMPAIGN\tCODE\tSINCE\tUNTIL\tREQUEST")
	for _, s := range sups {
		campaign := s.Campaign
		if campaign == "" {
			campaign = "(all)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Number, campaign, s.Code, seconds(s.Since), seconds(s.Until), s.ID)
	}
	return tw.Flush()
}

func seconds(s string) string {
	t := parseStamp(s)
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// Lift ends the suppression of number (within campaign when not "");
// ErrNotFound when there is no live one.
func Lift(ctx context.Context, st *store.Store, number, campaign string) error {
	key := store.SuppressionKey(number, campaign)
	lifted, err := st.Lift(ctx, key)
	if err != nil {
		return err
	}
	if !lifted {
		hint := ""
		if campaign == "" {
			hint = " (an entry for one campaign needs --campaign; `mmsgate suppress list` shows them)"
		}
		return fmt.Errorf("no live suppression of %s%s: %w", key, hint, ErrNotFound)
	}
	return nil
}
