// Package apiclient is the Go side of gitfleet-server's HTTP API: the JSON
// resources it serves (Device, Event, Release, Channel), the error every
// failed request answers with and its codes, the device list's query
// parameters, and Client, a typed client for the API that the gitfleet CLI
// uses.
//
// server/api serves these same types, so the two cannot drift apart; the
// API's OpenAPI document describes them for other languages.
package apiclient
