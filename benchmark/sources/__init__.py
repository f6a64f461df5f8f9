"""Row builders for suite sources that need more than the generic loader (``records: module:function``)."""
