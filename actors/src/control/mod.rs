//! The local control socket: request/response types and the server.

pub mod protocol;
pub mod server;
