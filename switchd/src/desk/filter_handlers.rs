//! Saved filters of the ticket list (常用筛选): every signed-in user keeps their own, stored on
//! the server so they follow the login from desk to desk. The user is always the session's:
//! nobody lists, replaces or deletes another user's filters.

use rexian_shared::*;

use super::handlers::store_err;
use super::DeskContext;
use crate::cases::Actor;
use crate::store::StoreError;

type Reply = Result<Response, DeskError>;

/// The most filters one user keeps.
pub const MAX_SAVED_FILTERS: u64 = 50;

pub(super) async fn handle(ctx: &DeskContext, actor: &Actor, req: Request) -> Reply {
    let user = actor.user_id;
    let store = ctx.cases.store();
    match req {
        Request::ListSavedFilters => {}
        Request::SaveFilter { name, query } => {
            let name = filter_name(&name)?;
            let query = TicketQuery { page: 0, ..query };
            let now = ctx.now();
            store
                .write(move |db| {
                    if db.saved_filter_count(user)? >= MAX_SAVED_FILTERS && !db.has_saved_filter(user, &name)? {
                        return Ok(Err(too_many()));
                    }
                    db.save_filter(user, &name, &query, now)?;
                    Ok::<_, StoreError>(Ok(()))
                })
                .await
                .map_err(store_err)??;
            tracing::info!(user = actor.username, "saved filter stored");
        }
        Request::DeleteSavedFilter { name } => {
            let name = name.trim().to_owned();
            if !store.write(move |db| db.delete_saved_filter(user, &name)).await.map_err(store_err)? {
                return Err(DeskError::new(ErrorCode::NotFound, "没有这个常用筛选 / no saved filter of that name"));
            }
        }
        _ => return Err(DeskError::new(ErrorCode::Internal, "not a saved-filter request")),
    }
    let filters = store.read(move |db| db.saved_filters(user)).await.map_err(store_err)?;
    Ok(Response::SavedFilters { filters })
}

/// A filter's name: 1 to 30 characters once trimmed.
fn filter_name(name: &str) -> Result<String, DeskError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 30 {
        return Err(DeskError::field("name", "常用筛选名称应为1至30个字 / the filter's name must be 1 to 30 characters"));
    }
    Ok(name.to_owned())
}

fn too_many() -> DeskError {
    DeskError::new(ErrorCode::TooLarge, format!("常用筛选最多{MAX_SAVED_FILTERS}个，请先删除不用的 / at most {MAX_SAVED_FILTERS} saved filters: delete one first"))
}
