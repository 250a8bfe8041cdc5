pub mod common;
mod cli;
mod corruption;
mod golden;
mod mutation;
mod oracle_bolt;
pub mod live;
mod live_lock;
