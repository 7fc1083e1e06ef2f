/* (transport plug-in guide: being written) */
