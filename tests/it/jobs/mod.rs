mod batch_pool;
mod send_email;
