pub mod common;
mod cli;
mod corruption;
mod golden;
mod mutation;
mod oracle_bolt;
mod oracle_schema;
mod schema_findings;
