// Package bootstrapdns serves derper's /bootstrap-dns endpoint: a small
// JSON map from host names to IP addresses that lets clients with broken
// DNS still find their DERP and control servers.
//
// Two name lists are kept. Published names are resolved periodically and
// the whole map is returned to every request. Unpublished names are only
// answered for an explicit ?q=name query, and each may carry a rollout
// percentage read from a TXT record, so a new name can be handed to a
// deterministic fraction of clients before it is published.
package bootstrapdns
