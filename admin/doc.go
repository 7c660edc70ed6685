// Package admin is mailfront's operator HTTP endpoint: /metrics (the
// Prometheus text exposition format, version 0.0.4, from a
// prometheus.Gatherer), /healthz (the process runs), /readyz (it can serve:
// 200 or 503 with the reason) and /guard (the guard's state as JSON).
// Anything else is 404; methods other than GET and HEAD are 405 (RFC 9110
// sections 15.5.5 and 15.5.6).
//
// It does not authenticate or encrypt: keep it on loopback or a private
// network. It does not decide what ready means or what the guard reports
// (the command composes those), and it does not define metrics (package
// metrics does).
package admin
