"""The DICOMweb router: QIDO-RS, WADO-RS and STOW-RS, mounted by the application twice."""

from fastapi import APIRouter

from kaapana.dicomweb import delete, qido, stow, wado

router = APIRouter()
router.include_router(qido.router)
router.include_router(wado.router)
router.include_router(stow.router)
router.include_router(delete.router)

__all__ = ["router"]
