//! Times in and out of the API: RFC 3339 both ways.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::Error;

/// An optional RFC 3339 parameter; the error names the field.
pub fn parse(field: &'static str, value: Option<&str>) -> Result<Option<OffsetDateTime>, Error> {
    value
        .map(|s| {
            OffsetDateTime::parse(s, &Rfc3339)
                .map_err(|_| Error::invalid(field, format!("`{field}` must be an RFC 3339 time")))
        })
        .transpose()
}

pub fn format(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}
