//! The report of `timeline`: every record's creation and last update in time
//! order (`docs/report.md`, "timeline").

use std::io::{self, Write};

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::table::write_columns;
use super::{Envelope, InputInfo};
use crate::analysis::timeline::Event;
use crate::bytes::{table_cell, Bytes};

/// One event as the report writes it.
struct EventOut<'r, 'a>(&'r Event<'a>);

impl Serialize for EventOut<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("time", &e.time)?;
        m.serialize_entry("event", e.event.name())?;
        m.serialize_entry("namespace", &e.namespace)?;
        m.serialize_entry("kind", e.kind.name())?;
        m.serialize_entry("id", &Bytes(&e.id))?;
        m.end()
    }
}

#[derive(Serialize)]
struct Body<'r> {
    events: Vec<EventOut<'r, 'r>>,
}

/// The JSON report: one document.
pub fn write_json(out: &mut dyn Write, input: InputInfo, events: &[Event<'_>]) -> io::Result<()> {
    let body = Body {
        events: events.iter().map(EventOut).collect(),
    };
    super::write_pretty(out, &Envelope::new("timeline", input, body))
}

/// JSONL: one event per line.
pub fn write_lines(out: &mut dyn Write, events: &[Event<'_>]) -> io::Result<()> {
    super::write_lines(out, events.iter().map(EventOut))
}

/// The table: TIME, EVENT, NAMESPACE, KIND, ID.
pub fn write_table(out: &mut dyn Write, events: &[Event<'_>]) -> io::Result<()> {
    let mut rows = vec![["TIME", "EVENT", "NAMESPACE", "KIND", "ID"]
        .map(String::from)
        .to_vec()];
    for e in events {
        rows.push(vec![
            e.time.rfc3339_nano_go(),
            e.event.name().to_string(),
            table_cell(e.namespace.0),
            e.kind.name().to_string(),
            table_cell(&e.id),
        ]);
    }
    write_columns(out, &rows)
}
