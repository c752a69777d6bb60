//! The multi-host test bed: network namespaces joined by a bridge (`TestNet`), a Redis
//! Cluster every namespace reaches (`TestCluster`), `dispatchd` nodes inside namespaces
//! (`Node`) and nginx in front of nodes (`Nginx`).

mod cmd;
mod names;
mod needs;
mod netns;
mod nginx;
mod node;
mod redis_cluster;
mod sweep;

pub use cmd::signal;
pub use needs::{has_program, skip};
pub use netns::TestNet;
pub use nginx::{check as nginx_check, Nginx};
pub use node::{Node, DISPATCHER};
pub use redis_cluster::TestCluster;
