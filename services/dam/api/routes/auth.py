"""Register, sign in, API keys, and user administration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError

from services.dam.api.deps import AdminUser, Ctx, CurrentUser, Session, oauth2
from services.dam.api.validation import DbId, SafeStr
from services.dam.core.security import (
    API_KEY_PREFIX,
    hash_password,
    hash_password_async,
    new_token,
    token_digest,
    verify_password_async,
)
from services.dam.core.throttle import Throttled
from services.dam.models import Token, User
from services.dam.schemas import ApiKeyCreate, ApiKeyOut, TokenOut, UserAdminUpdate, UserCreate, UserOut

router = APIRouter(tags=["users"])
# A hash to verify against when the email is unknown, so timing does not reveal which emails exist.
_DUMMY_HASH = hash_password("not-a-real-password")
# The registration whose insert lands in this one-row table is the installation's first admin.
_CLAIM_FIRST_ADMIN = text("INSERT INTO dam_first_admin (user_id) VALUES (:id) ON CONFLICT DO NOTHING RETURNING user_id")
# Every active admin, locked: concurrent changes of admins are serialised, so two cannot both step down.
_LOCK_ADMINS = select(User.id).where(User.role == "admin", User.is_active).order_by(User.id).with_for_update()


class LoginForm:
    """OAuth2's password form (`username` is the email), with bounded, storable fields."""

    def __init__(self, username: Annotated[SafeStr, Form(max_length=254)],
                 password: Annotated[str, Form(max_length=1024)]) -> None:
        self.username = username
        self.password = password


@router.post("/auth/register", response_model=UserOut, status_code=status.HTTP_201_CREATED)
async def register(body: UserCreate, session: Session) -> User:
    """Creates an account. The first account of a fresh installation becomes its admin."""
    email = body.email.strip().lower()
    user = User(email=email, password_hash=await hash_password_async(body.password), role="user")
    session.add(user)
    try:
        await session.flush()
        # Concurrent first registrations: the primary key lets one insert in; the others wait for its
        # commit and then insert nothing.
        if (await session.execute(_CLAIM_FIRST_ADMIN, {"id": user.id})).first() is not None:
            user.role = "admin"
        await session.commit()
    except IntegrityError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, "an account with this email already exists") from exc
    return user


@router.post("/auth/login", response_model=TokenOut,
             responses={429: {"description": "too many failed sign-ins for this account or address; see "
                                             "Retry-After"}})
async def login(form: Annotated[LoginForm, Depends()], request: Request, session: Session, ctx: Ctx) -> TokenOut:
    email = form.username.strip().lower()
    try:
        attempt = ctx.login_throttle.begin(email, request.client.host if request.client else "")
    except Throttled as exc:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc),
                            headers={"Retry-After": str(exc.retry_after_s)}) from exc
    user = (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()
    # The connection goes back to the pool while scrypt runs: a burst of sign-ins must not hold them all.
    await session.commit()
    ok = await verify_password_async(form.password, user.password_hash if user else _DUMMY_HASH)
    if user is None or not ok or not user.is_active:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong email or password",
                            headers={"WWW-Authenticate": "Bearer"})
    ctx.login_throttle.succeeded(attempt)
    token = new_token()
    expires = datetime.now(UTC) + timedelta(hours=ctx.settings.dam.token_ttl_hours)
    session.add(Token(user_id=user.id, kind="session", token_hash=token_digest(token), prefix=token[:6],
                      expires_at=expires))
    await session.commit()
    return TokenOut(access_token=token, expires_at=expires)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(user: CurrentUser, session: Session, bearer: Annotated[str | None, Depends(oauth2)]) -> None:
    """Ends the session whose token this request carries (other sessions and API keys stay valid)."""
    if bearer:
        await session.execute(delete(Token).where(Token.token_hash == token_digest(bearer),
                                                  Token.user_id == user.id, Token.kind == "session"))
        await session.commit()


@router.get("/users/me", response_model=UserOut)
async def me(user: CurrentUser) -> User:
    return user


@router.post("/users/me/api-keys", response_model=ApiKeyOut, status_code=status.HTTP_201_CREATED)
async def create_api_key(body: ApiKeyCreate, user: CurrentUser, session: Session) -> ApiKeyOut:
    key = new_token(API_KEY_PREFIX)
    token = Token(user_id=user.id, kind="api_key", name=body.name, token_hash=token_digest(key), prefix=key[:10])
    session.add(token)
    await session.commit()
    return ApiKeyOut.model_validate(token).model_copy(update={"key": key})


@router.get("/users/me/api-keys", response_model=list[ApiKeyOut])
async def list_api_keys(user: CurrentUser, session: Session) -> list[Token]:
    rows = await session.execute(select(Token).where(Token.user_id == user.id, Token.kind == "api_key")
                                 .order_by(Token.id))
    return list(rows.scalars())


@router.delete("/users/me/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_api_key(key_id: DbId, user: CurrentUser, session: Session) -> None:
    result = await session.execute(delete(Token).where(Token.id == key_id, Token.user_id == user.id,
                                                       Token.kind == "api_key"))
    if result.rowcount == 0:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "API key not found")
    await session.commit()


@router.get("/users", response_model=list[UserOut])
async def list_users(_: AdminUser, session: Session) -> list[User]:
    return list((await session.execute(select(User).order_by(User.id))).scalars())


@router.patch("/users/{user_id}", response_model=UserOut,
              responses={409: {"description": "the change would leave no active admin"}})
async def update_user(user_id: DbId, body: UserAdminUpdate, _: AdminUser, session: Session) -> User:
    admins = list((await session.execute(_LOCK_ADMINS)).scalars())
    user = (await session.execute(select(User).where(User.id == user_id).execution_options(populate_existing=True))
            ).scalar_one_or_none()
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "user not found")
    changes = body.model_dump(exclude_none=True)
    steps_down = changes.get("role", "admin") != "admin" or changes.get("is_active") is False
    if steps_down and admins == [user.id]:
        raise HTTPException(status.HTTP_409_CONFLICT, "the last admin cannot be demoted or deactivated; "
                                                      "make another user admin first")
    for key, value in changes.items():
        setattr(user, key, value)
    await session.commit()
    return user
