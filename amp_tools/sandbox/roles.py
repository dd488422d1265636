"""The bundle of role services one sandbox runs; roles call each other in-process through it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from amp_tools.sandbox.acquirer import Acquirer
    from amp_tools.sandbox.credential_provider import CredentialProvider
    from amp_tools.sandbox.merchants import Merchants
    from amp_tools.sandbox.network import Network
    from amp_tools.sandbox.state import Context
    from amp_tools.sandbox.wallet import Wallet

__all__ = ["Roles"]


class Roles:
    """Holds every role; built once by `Sandbox`."""

    cp: CredentialProvider
    network: Network
    wallet: Wallet
    acquirer: Acquirer
    merchants: Merchants

    def __init__(self, ctx: Context) -> None:
        from amp_tools.sandbox.acquirer import Acquirer
        from amp_tools.sandbox.credential_provider import CredentialProvider
        from amp_tools.sandbox.merchants import Merchants
        from amp_tools.sandbox.network import Network
        from amp_tools.sandbox.wallet import Wallet

        self.ctx = ctx
        self.cp = CredentialProvider(ctx, self)
        self.network = Network(ctx, self)
        self.wallet = Wallet(ctx, self)
        self.acquirer = Acquirer(ctx, self)
        self.merchants = Merchants(ctx, self)
