// Package varz renders Go expvar variables in the Prometheus text
// exposition format, following the naming conventions of the reference
// DERP server so that existing dashboards keep working.
//
// A top-level variable's name may start with a type prefix (gauge_,
// counter_, histogram_) that sets its Prometheus type and is stripped. A
// top-level *expvar.Map is a set: each child is rendered under
// "<set>_<child>", the child's own prefix setting its type. An
// *expvar.Map inside a set, a LabelMap, or a map whose name carries a
// labelmap_<label>_ prefix renders one sample per key with a label.
// Values with a Snapshot method render as histograms.
package varz
