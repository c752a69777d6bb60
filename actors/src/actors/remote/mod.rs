//! Order and rider actors on different nodes (docs/cluster.md, "Any socket on any
//! node"). An order reaches a rider, and a rider an order, through a reference that is
//! either the actor's address on this node or the node it lives on: the same messages
//! either way, in the same order (`local` delivers them here; a remote reference sends
//! them as data, `wire`, through the mesh, and the other node's `serve` delivers them).

pub mod local;
mod refs;
mod serve;
pub mod wire;

pub use refs::{OrderRef, RiderRef};
pub use serve::NodeCalls;

use crate::mesh::{Mesh, MeshError};
use futures_util::future::{BoxFuture, FutureExt};
use redis::aio::ConnectionLike;
use std::sync::Arc;

/// The other nodes, as the actors see them: a call with an answer, or a one-way note.
pub trait Peers: Send + Sync + 'static {
    /// This node's id.
    fn node(&self) -> &str;
    fn call(&self, to: &str, body: String) -> BoxFuture<'static, Result<String, MeshError>>;
    /// False when it could not even be queued.
    fn note(&self, to: &str, body: String) -> bool;
}

impl<C> Peers for Arc<Mesh<C>>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    fn node(&self) -> &str {
        Mesh::node(self)
    }

    fn call(&self, to: &str, body: String) -> BoxFuture<'static, Result<String, MeshError>> {
        Mesh::call(self, to, body).boxed()
    }

    fn note(&self, to: &str, body: String) -> bool {
        Mesh::note(self, to, body)
    }
}

#[cfg(test)]
mod tests;
