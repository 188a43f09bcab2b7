"""The privacy officer's download of an access export (a ZIP decrypted as it is served; a read, not audited)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_GET

from apps.core.errors import AttestError, NotFound, PermissionDenied
from apps.rights.exports import export_package_bytes
from apps.rights.models import ExportPackage
from apps.rights.permissions import visible_to


@login_required
@require_GET
def export_download(request: HttpRequest, pk: Any) -> HttpResponse:
    package = get_object_or_404(
        ExportPackage.objects.select_related("organisation", "request").filter(request__in=visible_to(request.user)),
        pk=pk,
    )
    try:
        data = export_package_bytes(user=request.user, package=package)
    except NotFound:
        raise Http404 from None
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from None
    except AttestError as exc:  # expired and erased, or a stored file that fails its integrity check
        messages.error(request, exc.message)
        return redirect("rights:detail", pk=package.request_id)
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{package.filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response
