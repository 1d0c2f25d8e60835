mod send_email;
