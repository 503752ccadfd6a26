"""Sending the portal's emails from templates under templates/email/.

Each email is a pair of templates: `email/<name>_subject.txt` (one line) and
`email/<name>.txt` (the body). Every app sends its mail through `email_send`.
"""

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string


def email_send(
    *, to: str, template: str, context: dict, attachments: list[tuple[str, str, str]] = ()
) -> None:
    """Send one email; `attachments` are (file name, content, MIME type)."""
    context = {"portal_url": settings.PORTAL_BASE_URL, **context}
    subject = render_to_string(f"email/{template}_subject.txt", context).strip()
    body = render_to_string(f"email/{template}.txt", context)
    message = EmailMessage(subject=subject, body=body, to=[to])
    for attachment in attachments:
        message.attach(*attachment)
    message.send()
