// Command lambda-baseline is the smallest aws-lambda-go function, built
// like mmsgate's: `make bench` compares cold starts and sizes with it.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(ctx context.Context, in map[string]any) (map[string]any, error) { return in, nil })
}
