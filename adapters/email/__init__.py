"""``EmailSender`` adapters: an SMTP server (smtp.py), Amazon SES (ses.py), and the
local default, a mailbox file (mailbox.py)."""

from adapters.email.mailbox import MailboxEmailSender
from adapters.email.ses import SesEmailSender
from adapters.email.smtp import SmtpEmailSender, SmtpSettings, StartTls

__all__ = ["MailboxEmailSender", "SesEmailSender", "SmtpEmailSender", "SmtpSettings", "StartTls"]
