// Package ops is the logic of the operator command mmsgate (cmd/mmsgate):
// what one request went through (Status), the suppression list
// (Suppressions, Lift) and moving dead-letter messages back to the send
// queue (Redrive). It reads the records only through pkg/store's read
// models and talks to AWS through the narrow interfaces it declares, so
// its tests run on internal/memdb and a function-field fake of SQS.
//
// CLI.Run is the whole command line; cmd/mmsgate only wires it to the
// process (os.Args, os.Stdout, the AWS SDK).
package ops
