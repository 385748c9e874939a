package skycore

import "github.com/mmsgate/mmsgate/pkg/delivery"

// What a postback's CODE means (docs/vendor.md, docs/postback.md): the
// delivery receipts, each as the event kind it becomes, and the
// template-encoding notices, which become no event. Keyed on CODE, never on
// ORIGIN: the fallback receipt N202 comes under MMS_MT or SMS_MT.
var (
	receipts = map[string]string{
		"N101": delivery.Sent, "N201": delivery.Sent,
		"N102": delivery.Delivered, "N202": delivery.Delivered,
		"E102": delivery.Undelivered, "E202": delivery.Undelivered, "N103": delivery.Undelivered,
		"E101": delivery.Failed, "E201": delivery.Failed,
	}
	notices = map[string]bool{"N003": true, "N013": true, "E002": true, "E003": true, "E004": true, "E011": true, "E012": true, "E013": true}
)

// ReceiptEvent is the event kind of a delivery-receipt CODE; ok is false
// for a code that is not a receipt.
func ReceiptEvent(code string) (event string, ok bool) {
	event, ok = receipts[code]
	return event, ok
}

// Notice reports whether a postback CODE is a template-encoding notice:
// logged and counted, no event.
func Notice(code string) bool { return notices[code] }
