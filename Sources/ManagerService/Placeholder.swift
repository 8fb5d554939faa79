enum ManagerServicePlaceholder {}
