mod batch_pool;
mod batchers;
mod send_email;
