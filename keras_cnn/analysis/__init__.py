"""Measurement: parameter and MAC counts (:mod:`.counting`), speed comparisons with
keras.applications (:mod:`.speed`) and the generated model table (:mod:`.model_table`)."""
