// Package config is the schema of a bootstrap configuration: strict,
// position-aware parsing of one layer, the merge rule, ${fact}
// interpolation, defaults and validation. Every error it returns is an
// ErrorList whose entries read "source:line:col: key.path: message", so an
// operator can go straight to the line to fix.
//
// # Merge rule
//
// Layers are merged in order, later over earlier. Mappings merge key by key;
// sequences and scalars replace: a later files: list replaces the earlier
// list whole, it does not append to it. A later layer may not change a key's
// kind (mapping, sequence, scalar): that is an error naming both sources and
// positions. An explicit null (key: ~, or key: with no value) resets the key
// to its default, dropping whatever earlier layers set; a later layer may set
// it again, with any kind. The top-level include key is not merged: the
// engine resolves each layer's includes (Layer.Includes) before merging, and
// the merged configuration has none.
//
// # Interpolation
//
// After merging, ${name} in any string value is replaced by the fact of that
// name (instance_id, region, availability_zone, instance_type, ami_id,
// local_ipv4, mac, account_id, role, hostname). A name is made of a-z, 0-9
// and _; an unknown name is an error. $${ is a literal ${, and a $ not
// followed by { is a literal $.
//
// # Adding a section
//
// The schema is the Config struct: the strict checker walks YAML nodes
// against the Go types by reflection using their yaml tags, so a new section
// is a new field. A type that needs defaults or cross-field rules implements
// check(*checker, path), which Decode calls after decoding.
package config
