"""Register, sign in, API keys, and user administration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from services.dam.api.deps import AdminUser, Ctx, CurrentUser, Session
from services.dam.core.security import API_KEY_PREFIX, hash_password, new_token, token_digest, verify_password
from services.dam.models import Token, User
from services.dam.schemas import ApiKeyCreate, ApiKeyOut, TokenOut, UserAdminUpdate, UserCreate, UserOut

router = APIRouter(tags=["users"])
# A hash to verify against when the email is unknown, so timing does not reveal which emails exist.
_DUMMY_HASH = hash_password("not-a-real-password")


@router.post("/auth/register", response_model=UserOut, status_code=status.HTTP_201_CREATED)
async def register(body: UserCreate, session: Session) -> User:
    """Creates an account. The first account of a fresh installation becomes its admin."""
    email = body.email.strip().lower()
    first = (await session.execute(select(func.count()).select_from(User))).scalar_one() == 0
    user = User(email=email, password_hash=hash_password(body.password), role="admin" if first else "user")
    session.add(user)
    try:
        await session.commit()
    except IntegrityError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, "an account with this email already exists") from exc
    return user


@router.post("/auth/login", response_model=TokenOut)
async def login(form: Annotated[OAuth2PasswordRequestForm, Depends()], session: Session, ctx: Ctx) -> TokenOut:
    user = (await session.execute(select(User).where(User.email == form.username.strip().lower()))).scalar_one_or_none()
    ok = verify_password(form.password, user.password_hash if user else _DUMMY_HASH)
    if user is None or not ok or not user.is_active:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong email or password",
                            headers={"WWW-Authenticate": "Bearer"})
    token = new_token()
    expires = datetime.now(UTC) + timedelta(hours=ctx.settings.dam.token_ttl_hours)
    session.add(Token(user_id=user.id, kind="session", token_hash=token_digest(token), prefix=token[:6],
                      expires_at=expires))
    await session.commit()
    return TokenOut(access_token=token, expires_at=expires)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(user: CurrentUser, session: Session) -> None:
    await session.execute(delete(Token).where(Token.user_id == user.id, Token.kind == "session"))
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
async def delete_api_key(key_id: int, user: CurrentUser, session: Session) -> None:
    result = await session.execute(delete(Token).where(Token.id == key_id, Token.user_id == user.id,
                                                       Token.kind == "api_key"))
    if result.rowcount == 0:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "API key not found")
    await session.commit()


@router.get("/users", response_model=list[UserOut])
async def list_users(_: AdminUser, session: Session) -> list[User]:
    return list((await session.execute(select(User).order_by(User.id))).scalars())


@router.patch("/users/{user_id}", response_model=UserOut)
async def update_user(user_id: int, body: UserAdminUpdate, _: AdminUser, session: Session) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "user not found")
    for key, value in body.model_dump(exclude_none=True).items():
        setattr(user, key, value)
    await session.commit()
    return user
