// Package topic is the grammar of gitfleet's MQTT topics. It builds every topic
// name and subscription filter that the server and the agent use, and parses
// topic names back into what they address; no other package spells a topic.
//
// Every topic lives under gitfleet/v1/<fleet>/:
//
//	gitfleet/v1/<fleet>/channels/<channel>          KindChannel
//	gitfleet/v1/<fleet>/devices/<device>/desired    KindDesired
//	gitfleet/v1/<fleet>/devices/<device>/status     KindStatus
//	gitfleet/v1/<fleet>/devices/<device>/events     KindEvents
//
// Fleets, channels and devices are named by IDs (see CheckID), so each fills
// exactly one topic level and never acts as a wildcard. Which message each
// topic carries, with its QoS and retain flag, is in proto/README.md.
package topic
