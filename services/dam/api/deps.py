"""Shared request dependencies: the context, a DB session, the signed-in user, visibility checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.dam.context import DamContext
from services.dam.core.security import token_digest
from services.dam.models import Token, User

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/auth/login", auto_error=False)
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def get_ctx(request: Request) -> DamContext:
    return request.app.state.ctx


Ctx = Annotated[DamContext, Depends(get_ctx)]


async def get_session(ctx: Ctx) -> AsyncIterator[AsyncSession]:
    async with ctx.db.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]


async def current_user(
    session: Session,
    bearer: Annotated[str | None, Depends(oauth2)],
    api_key: Annotated[str | None, Depends(api_key_header)],
) -> User:
    raw = bearer or api_key
    unauthorized = HTTPException(
        status.HTTP_401_UNAUTHORIZED, "sign in: send `Authorization: Bearer <token or API key>`",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if not raw:
        raise unauthorized
    # The token and its user in one round trip: this runs on every request.
    row = (await session.execute(select(Token, User).join(User, User.id == Token.user_id)
                                 .where(Token.token_hash == token_digest(raw)))).first()
    now = datetime.now(UTC)
    if row is None:
        raise unauthorized
    token, user = row
    if (token.expires_at is not None and token.expires_at <= now) or not user.is_active:
        raise unauthorized
    if token.kind == "api_key":
        await session.execute(update(Token).where(Token.id == token.id).values(last_used_at=now))
    # Ends the transaction so the connection goes back to the pool, e.g. while a large upload streams in.
    await session.commit()
    return user


CurrentUser = Annotated[User, Depends(current_user)]


async def admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs the admin role")
    return user


AdminUser = Annotated[User, Depends(admin_user)]


def can_see(obj: Any, user: User) -> bool:
    return user.is_admin or obj.owner_id == user.id or obj.visibility == "public"


def visible_clause(model: Any, user: User, mine: bool = False) -> ColumnElement[bool] | None:
    """The SQL twin of `can_see` for listing rows of `model` (`mine`: the user's own only); None when
    the user may see every row (an admin listing everything)."""
    if mine:
        return model.owner_id == user.id
    if user.is_admin:
        return None
    return or_(model.owner_id == user.id, model.visibility == "public")


def require_visible(obj: Any, user: User, what: str) -> Any:
    """Another user's private thing does not exist as far as this user can tell: 404, not 403."""
    if obj is None or getattr(obj, "deleted_at", None) is not None or not can_see(obj, user):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{what} not found")
    return obj


def require_owner(obj: Any, user: User, what: str) -> Any:
    require_visible(obj, user, what)
    if not (user.is_admin or obj.owner_id == user.id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"only the owner may change this {what}")
    return obj
